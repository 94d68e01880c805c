import fc from 'fast-check';
import { copyId, copyIdLowered, viewOf } from '@hourglass/gateway/id-bytes';

/** The 32-bit id copies against a byte-by-byte reading of what they must do, at any offsets. */
describe('id copies', () => {
  const caseMixed = fc
    .tuple(fc.uuid(), fc.array(fc.boolean(), { minLength: 36, maxLength: 36 }))
    .map(([id, upper]) => [...id].map((c, i) => (upper[i] ? c.toUpperCase() : c)).join(''));

  it('copies a UUID of either case in lower case, and as it is, leaving the bytes around it alone', () => {
    fc.assert(
      fc.property(caseMixed, fc.nat(9), fc.nat(9), (id, from, to) => {
        const source = Buffer.alloc(from + 36 + 3, 0x7e);
        source.write(id, from, 'latin1');
        const lowered = Buffer.alloc(to + 36 + 3, 0x7e);
        const same = Buffer.alloc(to + 36 + 3, 0x7e);
        copyIdLowered(viewOf(source), from, viewOf(lowered), to);
        copyId(viewOf(source), from, viewOf(same), to);
        const around = '~'.repeat(to);
        expect(lowered.toString('latin1')).toBe(around + id.toLowerCase() + '~~~');
        expect(same.toString('latin1')).toBe(around + id + '~~~');
      }),
      { seed: 20261206, numRuns: 300 },
    );
  });

  it('reads and writes views of a larger buffer at their own offsets', () => {
    const backing = Buffer.alloc(200, 0x2e);
    const source = backing.subarray(13, 13 + 40);
    source.write('0A1B2C3D-4E5F-6A7B-8C9D-0E1F2A3B4C5D', 2, 'latin1');
    const target = backing.subarray(101, 101 + 40);
    copyIdLowered(viewOf(source), 2, viewOf(target), 3);
    expect(target.toString('latin1', 3, 39)).toBe('0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d');
    expect(backing.toString('latin1', 101, 104)).toBe('...');
    expect(backing.toString('latin1', 140, 141)).toBe('.');
  });
});
