/** Checks a byte range of ObjectStore.getRange: integers, 0 ≤ start ≤ end (end exclusive). */
export function checkByteRange(start: number, end: number): void {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
    throw new RangeError(`byte range [${start}, ${end}) is not a range of an object`);
  }
}
