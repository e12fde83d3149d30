// Shared by the zarrita.js probes (under Node, and in headless Chromium): the record protocol of _common.py
// (record_version 1), npm packages from the image, and how values are described for the host to compare:
// shape, dtype, chunks, fill value, attributes and the SHA-256 of the values (little-endian, C order, as the
// Python probes hash them). Imported by the probe scripts next to it; runs nothing by itself.
import { createHash } from "node:crypto";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

export const RECORD_VERSION = 1;
export const NPM = process.env.ZIPSTORE_NPM || "/opt/npm/node_modules";

export class Unsupported extends Error {}

export function packageJson(name) {
  return JSON.parse(readFileSync(join(NPM, name, "package.json"), "utf-8"));
}

/** An ES module of an installed package, by its package.json "exports" (import condition). */
export async function load(name, subpath = ".") {
  const pkg = packageJson(name);
  let target = pkg.exports?.[subpath];
  if (target && typeof target === "object") target = target.import ?? target.default;
  if (typeof target !== "string") target = subpath === "." ? pkg.module ?? pkg.main : subpath;
  return import(pathToFileURL(join(NPM, name, target)).href);
}

const DTYPES = {
  int8: "|i1", uint8: "|u1", bool: "|b1", int16: "<i2", uint16: "<u2", int32: "<i4", uint32: "<u4",
  int64: "<i8", uint64: "<u8", float16: "<f2", float32: "<f4", float64: "<f8",
};

export function jsonable(value) {
  if (typeof value === "bigint") return Number(value);
  if (typeof value === "number") {
    if (Number.isNaN(value)) return "NaN";
    if (!Number.isFinite(value)) return value > 0 ? "Infinity" : "-Infinity";
    return value;
  }
  if (Array.isArray(value)) return value.map(jsonable);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, jsonable(v)]));
  }
  return value ?? null;
}

export const TYPED = {
  int8: Int8Array, uint8: Uint8Array, bool: Uint8Array, int16: Int16Array, uint16: Uint16Array,
  int32: Int32Array, uint32: Uint32Array, int64: BigInt64Array, uint64: BigUint64Array,
  float32: Float32Array, float64: Float64Array,
};

/** A scalar (0-d array) comes back as a bare value: made a chunk like any other, typed by its dtype. */
function asChunk(value, dtype) {
  if (value && typeof value === "object" && "data" in value && Array.isArray(value.shape)) return value;
  const Typed = TYPED[dtype];
  const data = Typed ? Typed.from([typeof value === "boolean" ? Number(value) : value]) : [value];
  return { data, shape: [], stride: [] };
}

function isCOrder(chunk) {
  let expected = 1;
  for (let i = chunk.shape.length - 1; i >= 0; i--) {
    if (chunk.shape[i] > 1 && chunk.stride[i] !== expected) return false;
    expected *= chunk.shape[i];
  }
  return true;
}

/** The element offsets of a strided chunk in C order (zarrita returns the array's own order, e.g. F). */
function cOrderOffsets(chunk) {
  const n = chunk.shape.reduce((a, b) => a * b, 1);
  const offsets = new Array(n);
  const index = new Array(chunk.shape.length).fill(0);
  for (let k = 0; k < n; k++) {
    let offset = 0;
    for (let d = 0; d < index.length; d++) offset += index[d] * chunk.stride[d];
    offsets[k] = offset;
    for (let d = index.length - 1; d >= 0; d--) {
      if (++index[d] < chunk.shape[d]) break;
      index[d] = 0;
    }
  }
  return offsets;
}

/** Chunks read region by region (a part read), joined flat in C order as _common.read_values joins them. */
export function joined(chunks) {
  const flat = chunks.map((chunk) => {
    const order = isCOrder(chunk) ? null : cOrderOffsets(chunk);
    return order ? chunk.data.constructor.from(order, (i) => chunk.data[i]) : chunk.data;
  });
  const n = flat.reduce((sum, d) => sum + d.length, 0);
  const data = new flat[0].constructor(n);
  let at = 0;
  for (const d of flat) {
    data.set(d, at);
    at += d.length;
  }
  return { data, shape: [n], stride: [1] };
}

/** An array's values: whole, or (`regions`, [start, stop] per dimension each) the regions read one by one
 *  and joined: a fixture too large to read whole over HTTP. */
export async function readValues(zarr, arr, regions) {
  if (!regions) return zarr.get(arr);
  const chunks = [];
  for (const region of regions) chunks.push(await zarr.get(arr, region.map(([a, b]) => zarr.slice(a, b))));
  return joined(chunks);
}

/** SHA-256 of the values as the Python probes compute it: little-endian bytes in C order; text as its
 *  values joined by NUL; fixed-length byte strings (numpy |S) as their bytes. */
export function describe(result, arr, record) {
  const chunk = asChunk(result, String(arr.dtype));
  const data = chunk.data;
  const out = { shape: chunk.shape, chunks: arr.chunks, fill_value: jsonable(arr.fillValue) };
  const hash = createHash("sha256");
  const order = isCOrder(chunk) ? null : cOrderOffsets(chunk);
  const dtype = String(arr.dtype);
  const bytes = /^v2:S(\d+)$/.exec(dtype);
  if (ArrayBuffer.isView(data) || dtype === "bool" || bytes) {
    // typed arrays; zarrita's BoolArray (a byte a value, like numpy's bool); ByteStringArray (|Sn)
    const view = ArrayBuffer.isView(data) ? data : new Uint8Array(data.buffer);
    const width = bytes ? Number(bytes[1]) : 1;
    let ordered = view;
    if (order) {
      ordered = new view.constructor(view.length);
      order.forEach((from, to) => ordered.set(view.subarray(from * width, (from + 1) * width), to * width));
    }
    hash.update(Buffer.from(ordered.buffer, ordered.byteOffset, ordered.byteLength));
    out.dtype = bytes ? `|S${bytes[1]}` : DTYPES[dtype] ?? dtype;
    if (out.dtype[1] === "f") out.nan_count = Array.prototype.reduce.call(view, (n, v) => n + (Number.isNaN(v) ? 1 : 0), 0);
  } else {
    // text: a JS array, or zarrita's string arrays (values by .get(i))
    const at = Array.isArray(data) ? (i) => data[i] : (i) => data.get(i);
    const positions = order ?? Array.from({ length: data.length }, (_, i) => i);
    const values = positions.map((i) => at(i));
    hash.update(Buffer.from(values.map((v) => (v == null ? "" : String(v))).join("\u0000"), "utf-8"));
    out.dtype = "str";
  }
  out.sha256 = hash.digest("hex");
  if (order) record.observations.push(`zarrita returned strides [${chunk.stride}]: values taken in C order`);
  const attrs = { ...(arr.attrs ?? {}) };
  const dims = attrs._ARRAY_DIMENSIONS ?? arr.dimensionNames;
  delete attrs._ARRAY_DIMENSIONS;
  out.attrs = jsonable(attrs);
  if (dims) out.dimension_names = jsonable(dims);
  return out;
}

/** The root group's attributes, for the host to compare; undefined when the root is an array or has no
 *  metadata (nothing to compare). */
export async function rootAttrs(open, root) {
  try {
    const group = await open(root, { kind: "group" });
    return jsonable(group.attrs ?? {});
  } catch {
    return undefined;
  }
}

const M64 = (1n << 64n) - 1n;
const INTS = { int8: 8, int16: 16, int32: 32, uint8: 8, uint16: 16, uint32: 32 };

/** The values a fixture's array spec describes, as _common.make_values makes them (splitmix64 over the element
 *  index, C order): integer dtypes up to 32 bits, the generators "random" and "images". What a JavaScript
 *  writer writes; a spec it cannot make is Unsupported, in these words. */
export function makeValues(spec) {
  const dtype = String(spec.dtype);
  const bits = INTS[dtype];
  const kind = spec.generator ?? "random";
  if (!bits || !["random", "images"].includes(kind)) {
    throw new Unsupported(`the JavaScript probes make integer fixtures up to 32 bits only, not ${dtype} (${kind})`);
  }
  const n = spec.shape.reduce((a, b) => a * b, 1);
  const out = new TYPED[dtype](n);
  const seed = BigInt(spec.seed ?? 1);
  const signed = dtype.startsWith("int");
  const span = 1n << BigInt(bits);
  for (let i = 0; i < n; i++) {
    let z = (BigInt(i) + seed * 0x9e3779b97f4a7c15n) & M64;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M64;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M64;
    z ^= z >> 31n;
    let v;
    if (kind === "images") v = z % 5n === 0n ? z % 256n : 0n; // soft blobs on a dark background
    else v = signed ? (z % span) - span / 2n : z % span;
    out[i] = Number(v);
  }
  return out;
}

export function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** A library error that means "zarrita lacks this" (a codec, a data type, a format feature). */
export function lacks(message) {
  return /unknown codec|unsupported|not supported|not implemented|no codec|unknown data ?type|unknown dtype/i.test(message);
}


/** Run a probe's body and write its record: ok, unsupported (zarrita lacks it) or error, in the words of
 *  zarrita (or of the library on top of it, record.library). `role` is what the probe does (a reader, or a
 *  writer of the archive at args.archive). */
export async function finish(args, record, body, role = "reader") {
  try {
    if (args.role !== role) throw new Unsupported(`${record.library} is a ${role} here; its ${args.role}s are not probed`);
    if (role === "reader" && !args.arrays?.length) throw new Unsupported("no array to read: this archive declares none");
    Object.assign(record, await body(), { status: "ok" });
  } catch (err) {
    // Node's fetch says what went wrong on the wire in the error's cause ("terminated": "other side closed")
    const cause = err?.cause?.message ? ` (${err.cause.name ?? "cause"}: ${err.cause.message})` : "";
    const message = (String(err?.message ?? err) + cause).slice(0, 2000) || String(err?.name ?? "Error");
    if (err instanceof Unsupported || lacks(message)) {
      Object.assign(record, { status: "unsupported", message: `${record.library} ${record.version ?? "?"}: ${message}` });
    } else {
      Object.assign(record, {
        status: "error",
        error_type: `${record.library}.${err?.name ?? "Error"}`,
        message,
        traceback: String(err?.stack ?? "").slice(-6000),
      });
    }
  }
  if (existsSync(join(args.scratch ?? process.cwd(), "zipstore-pickle-canary"))) record.executed_code = true;
  writeFileSync(args.record + ".tmp", JSON.stringify(record, null, 1));
  renameSync(args.record + ".tmp", args.record);
}
