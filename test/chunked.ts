// Input cut at odd places, for tests of streaming readers (the tar reader and
// the layer unpacker): a buffer delivered in chunks of chosen sizes.

/** `buf` delivered in chunks of the given sizes, cycling. */
export async function* chunked(buf: Buffer, sizes: number[]): AsyncGenerator<Buffer> {
  let i = 0;
  for (let pos = 0; pos < buf.length; i++) {
    const n = sizes[i % sizes.length]!;
    yield buf.subarray(pos, pos + n);
    pos += n;
  }
}
