// zlib (RFC 1950) / DEFLATE (RFC 1951) decompression, synchronous and dependency-free, so that
// "base64-zlib" array blocks decode the same way in Node and in every browser while a model loads
// (DecompressionStream is asynchronous; loading a model is not). The output size is known in advance
// (shape x itemsize), so inflating never allocates more than the document declared.

const LEN_BASE = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258];
const LEN_EXTRA = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
const DIST_BASE = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073,
  4097, 6145, 8193, 12289, 16385, 24577];
const DIST_EXTRA = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];
const CL_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

class ZlibError extends Error {}

// A canonical Huffman code as (counts per length, symbols sorted by code).
function huffman(lengths) {
  const counts = new Uint16Array(16);
  for (const l of lengths) counts[l]++;
  counts[0] = 0;
  const offs = new Uint16Array(16);
  for (let i = 1; i < 16; i++) offs[i] = offs[i - 1] + counts[i - 1];
  const symbols = new Uint16Array(lengths.length);
  for (let s = 0; s < lengths.length; s++) if (lengths[s]) symbols[offs[lengths[s]]++] = s;
  return { counts, symbols };
}

/** Inflate a zlib stream into exactly `expected` bytes (throws on any other size or a bad stream). */
export function inflateZlib(input, expected) {
  if (input.length < 6) throw new ZlibError("zlib stream too short");
  const cmf = input[0], flg = input[1];
  if ((cmf & 0x0f) !== 8 || ((cmf << 8) | flg) % 31 !== 0 || (flg & 0x20)) throw new ZlibError("not a zlib stream");
  const out = new Uint8Array(expected);
  let op = 0;
  let pos = 2, bitbuf = 0, bitcnt = 0;
  const bits = (need) => {
    while (bitcnt < need) {
      if (pos >= input.length) throw new ZlibError("zlib stream truncated");
      bitbuf |= input[pos++] << bitcnt;
      bitcnt += 8;
    }
    const v = bitbuf & ((1 << need) - 1);
    bitbuf >>>= need;
    bitcnt -= need;
    return v;
  };
  const decode = (h) => {
    let code = 0, first = 0, index = 0;
    for (let len = 1; len < 16; len++) {
      code |= bits(1);
      const count = h.counts[len];
      if (code - count < first) return h.symbols[index + (code - first)];
      index += count;
      first += count;
      first <<= 1;
      code <<= 1;
    }
    throw new ZlibError("bad Huffman code");
  };
  const put = (b) => {
    if (op >= expected) throw new ZlibError("inflates to more bytes than declared");
    out[op++] = b;
  };
  let fixedLit = null, fixedDist = null;
  let last = 0;
  while (!last) {
    last = bits(1);
    const type = bits(2);
    if (type === 0) {
      bitbuf = 0; bitcnt = 0;
      if (pos + 4 > input.length) throw new ZlibError("zlib stream truncated");
      const len = input[pos] | (input[pos + 1] << 8);
      const nlen = input[pos + 2] | (input[pos + 3] << 8);
      if ((len ^ 0xffff) !== nlen) throw new ZlibError("bad stored block");
      pos += 4;
      if (pos + len > input.length) throw new ZlibError("zlib stream truncated");
      for (let k = 0; k < len; k++) put(input[pos + k]);
      pos += len;
      continue;
    }
    let lit, dist;
    if (type === 1) {
      if (!fixedLit) {
        const l = new Uint8Array(288);
        l.fill(8, 0, 144); l.fill(9, 144, 256); l.fill(7, 256, 280); l.fill(8, 280, 288);
        fixedLit = huffman(l);
        fixedDist = huffman(new Uint8Array(30).fill(5));
      }
      lit = fixedLit; dist = fixedDist;
    } else if (type === 2) {
      const nlen = bits(5) + 257, ndist = bits(5) + 1, ncode = bits(4) + 4;
      const cl = new Uint8Array(19);
      for (let k = 0; k < ncode; k++) cl[CL_ORDER[k]] = bits(3);
      const clh = huffman(cl);
      const lengths = new Uint8Array(nlen + ndist);
      for (let k = 0; k < nlen + ndist;) {
        const sym = decode(clh);
        if (sym < 16) lengths[k++] = sym;
        else {
          let rep, val = 0;
          if (sym === 16) {
            if (k === 0) throw new ZlibError("bad code lengths");
            val = lengths[k - 1]; rep = 3 + bits(2);
          } else if (sym === 17) rep = 3 + bits(3);
          else rep = 11 + bits(7);
          if (k + rep > nlen + ndist) throw new ZlibError("bad code lengths");
          while (rep--) lengths[k++] = val;
        }
      }
      lit = huffman(lengths.subarray(0, nlen));
      dist = huffman(lengths.subarray(nlen));
    } else throw new ZlibError("bad block type");
    for (;;) {
      const sym = decode(lit);
      if (sym < 256) put(sym);
      else if (sym === 256) break;
      else {
        const li = sym - 257;
        if (li >= 29) throw new ZlibError("bad length code");
        const len = LEN_BASE[li] + bits(LEN_EXTRA[li]);
        const di = decode(dist);
        if (di >= 30) throw new ZlibError("bad distance code");
        const d = DIST_BASE[di] + bits(DIST_EXTRA[di]);
        if (d > op) throw new ZlibError("distance too far back");
        if (op + len > expected) throw new ZlibError("inflates to more bytes than declared");
        for (let k = 0; k < len; k++, op++) out[op] = out[op - d];
      }
    }
  }
  if (op !== expected) throw new ZlibError(`inflates to ${op} bytes, expected ${expected}`);
  // Adler-32 of the output, big-endian, after the (byte-aligned) end of the stream
  const p = pos;
  if (p + 4 > input.length) throw new ZlibError("zlib stream truncated (no checksum)");
  let a = 1, b = 0;
  for (let k = 0; k < out.length; k++) {
    a = (a + out[k]) % 65521;
    b = (b + a) % 65521;
  }
  const want = ((input[p] << 24) | (input[p + 1] << 16) | (input[p + 2] << 8) | input[p + 3]) >>> 0;
  if (((b << 16) | a) >>> 0 !== want) throw new ZlibError("zlib checksum mismatch");
  return out;
}
