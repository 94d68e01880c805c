/**
 * Parses a `multipart/related` body as the GCS client sends it for uploadType=multipart:
 * a JSON metadata part, then the media part. Parts are split on `--boundary` lines
 * (CRLF framing per RFC 2046); part bodies are kept as raw bytes.
 */
export interface MultipartPart {
  headers: Record<string, string>;
  body: Buffer;
}

export function boundaryOf(contentType: string | undefined): string | undefined {
  const m = /boundary="?([^";]+)"?/i.exec(contentType ?? '');
  return m?.[1];
}

export function parseMultipartRelated(body: Buffer, boundary: string): MultipartPart[] {
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: MultipartPart[] = [];
  let pos = body.indexOf(delimiter);
  if (pos < 0) throw new Error('multipart body has no boundary');
  for (;;) {
    pos += delimiter.length;
    // `--boundary--` closes the body.
    if (body[pos] === 0x2d && body[pos + 1] === 0x2d) return parts;
    pos = skipLineBreak(body, pos);
    const next = body.indexOf(delimiter, pos);
    if (next < 0) throw new Error('multipart body is not terminated');
    const part = body.subarray(pos, stripTrailingLineBreak(body, pos, next));
    parts.push(parsePart(part));
    pos = next;
  }
}

function parsePart(part: Buffer): MultipartPart {
  const split = part.indexOf('\r\n\r\n');
  const headerText = split < 0 ? '' : part.subarray(0, split).toString('utf8');
  const headers: Record<string, string> = {};
  for (const line of headerText.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { headers, body: split < 0 ? part : part.subarray(split + 4) };
}

function skipLineBreak(body: Buffer, pos: number): number {
  if (body[pos] === 0x0d && body[pos + 1] === 0x0a) return pos + 2;
  if (body[pos] === 0x0a) return pos + 1;
  return pos;
}

function stripTrailingLineBreak(body: Buffer, start: number, end: number): number {
  if (end - 2 >= start && body[end - 2] === 0x0d && body[end - 1] === 0x0a) return end - 2;
  if (end - 1 >= start && body[end - 1] === 0x0a) return end - 1;
  return end;
}
