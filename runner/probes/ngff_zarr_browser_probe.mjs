// The JavaScript ngff-zarr (@fideus-labs/ngff-zarr) writing an OME-Zarr single file (RFC-9, .ozx) the way a web
// page does: toMultiscales, then toNgffZarrOzx(multiscales) -> the zip's bytes. Same protocol as the other
// probes (see zarrita_common.mjs):
//
//     node ngff_zarr_browser_probe.mjs ARGS.json        -> the archive at args.archive, the record at args.record
//
// It runs in headless Chromium because the library needs a page: it encodes chunks in Web Workers that share
// the image through a SharedArrayBuffer (which a page has only when cross-origin isolated: the page is served
// with COOP/COEP headers), and downsamples with ITK-Wasm pipelines run in a worker of their own. Under Node 20
// it stops at "ReferenceError: Worker is not defined" (see README, "Readers not in the matrix"). Everything is
// served from this image: the library bundled with esbuild, its codec worker and ITK-Wasm's pipeline worker at
// the names the library asks for, and @itk-wasm/downsample's pipelines (setPipelinesBaseUrl), never a CDN.
//
// The fixture's image is made in the page as a zarrita array in memory (the fixture's chunks), then given to NgffImage (dims, scale,
// translation). The library's own toNgffImage(data) would do that in one call, but in 0.14.0 it writes no
// values: its array holds zeros (checked in this page). What the readers must see is what the library holds:
// each level's values are read from the multiscales' own arrays in the page, never from the archive; each
// level's metadata (chunks, fill value, attributes, dimension names) and the root's attributes are read from
// the zarr.json it wrote, as the Python OME writers' records do. Sources: ngff-zarr ts/src/io/to_ngff_zarr-
// browser.ts, ts/src/utils/worker_pool.ts, @fideus-labs/fizarrita set-worker.ts, itk-wasm create-web-worker.ts.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { inflateRawSync } from "node:zlib";

import { bundle, open, pageServer } from "./browser_common.mjs";
import { NPM, RECORD_VERSION, Unsupported, describe, finish, makeValues, packageJson } from "./zarrita_common.mjs";

const args = JSON.parse(readFileSync(process.argv[2], "utf-8"));
const record = { record_version: RECORD_VERSION, library: "fideus-labs-ngff-zarr", warnings: [], observations: [] };
const ENTRY =
  'export * from "@fideus-labs/ngff-zarr/browser"; export * as zarr from "zarrita"; ' +
  'export { setPipelinesBaseUrl } from "itk-wasm";';
// the workers the library starts with new Worker(new URL(NAME, import.meta.url)): bundled at those names
const WORKERS = [
  { in: join(NPM, "@fideus-labs/fizarrita/dist/codec-worker.js"), out: "codec-worker" },
  { in: join(NPM, "itk-wasm/dist/pipeline/web-workers/itk-wasm-pipeline.worker.js"), out: "web-workers/itk-wasm-pipeline.worker" },
];

/** In the page: the fixture's image (values as base64 bytes of `dtype`) through the library, timed; the zip's
 *  bytes and each level's values (from the library's own arrays) leave the page as base64. */
async function inPage(valuesB64, spec, ome) {
  const nz = await import("/entry.js");
  const { zarr } = nz;
  nz.setPipelinesBaseUrl(`${location.origin}/pipelines`);
  const toBytes = (b64) => Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
  const toB64 = (raw) => {
    let text = "";
    for (let i = 0; i < raw.length; i += 0x8000) text += String.fromCharCode(...raw.subarray(i, i + 0x8000));
    return btoa(text);
  };
  const Typed = { uint8: Uint8Array, int8: Int8Array, uint16: Uint16Array, int16: Int16Array, uint32: Uint32Array, int32: Int32Array }[spec.dtype];
  const raw = toBytes(valuesB64);
  const values = new Typed(raw.buffer, 0, raw.length / Typed.BYTES_PER_ELEMENT);
  const stride = spec.shape.map((_, i) => spec.shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const started = performance.now();
  const arr = await zarr.create(zarr.root(new Map()).resolve(spec.path), {
    shape: spec.shape,
    chunk_shape: spec.chunks, // level 0's chunks: toMultiscales' chunks apply to the levels it makes
    data_type: spec.dtype,
    fill_value: 0,
    codecs: nz.defaultCodecs(spec.dtype),
  });
  await zarr.set(arr, null, { data: values, shape: spec.shape, stride });
  const image = new nz.NgffImage({
    data: arr,
    dims: spec.dims,
    scale: ome.scale,
    translation: ome.translation,
    name: spec.path,
    axesUnits: undefined,
    computedCallbacks: undefined,
  });
  const multiscales = await nz.toMultiscales(image, { scaleFactors: ome.scale_factors, chunks: spec.chunks });
  multiscales.metadata.version = ome.version; // toMultiscales says 0.4, which toNgffZarrOzx refuses
  const zip = await nz.toNgffZarrOzx(multiscales);
  const seconds = (performance.now() - started) / 1000;
  const levels = {};
  for (const [n, dataset] of multiscales.metadata.datasets.entries()) {
    const got = await zarr.get(multiscales.images[n].data);
    levels[dataset.path] = { bytes: toB64(new Uint8Array(got.data.buffer, got.data.byteOffset, got.data.byteLength)), shape: got.shape, dtype: String(multiscales.images[n].data.dtype) };
  }
  return { zip: toB64(zip), levels, seconds, isolated: self.crossOriginIsolated };
}

/** One entry of a small zip (the archive just written): its bytes, stored or deflated. */
function zipEntry(zip, name) {
  const end = zip.lastIndexOf(Buffer.from("PK\x05\x06", "latin1"));
  if (end < 0) throw new Error("the archive has no end of central directory record");
  const count = zip.readUInt16LE(end + 10);
  let at = zip.readUInt32LE(end + 16);
  for (let i = 0; i < count; i++) {
    const method = zip.readUInt16LE(at + 10);
    const size = zip.readUInt32LE(at + 20);
    const nameLength = zip.readUInt16LE(at + 28);
    const skip = nameLength + zip.readUInt16LE(at + 30) + zip.readUInt16LE(at + 32);
    if (zip.toString("utf-8", at + 46, at + 46 + nameLength) === name) {
      const local = zip.readUInt32LE(at + 42);
      const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
      const data = zip.subarray(start, start + size);
      if (method === 0) return data;
      if (method === 8) return inflateRawSync(data);
      throw new Error(`${name}: compression method ${method}`);
    }
    at += 46 + skip;
  }
  throw new Error(`the archive holds no ${name}`);
}

/** The chunk shape a reader reports: the inner chunks of a sharded array, else the grid's. */
function innerChunks(meta) {
  const sharding = (meta.codecs ?? []).find((codec) => codec?.name === "sharding_indexed");
  return sharding?.configuration?.chunk_shape ?? meta.chunk_grid?.configuration?.chunk_shape ?? null;
}

async function write() {
  record.version = packageJson("@fideus-labs/ngff-zarr").version;
  const ome = args.fixture?.ome;
  if (!ome) throw new Unsupported("ngff-zarr writes OME-Zarr images; this fixture is not one");
  const [spec] = args.fixture.arrays;
  const values = makeValues(spec);
  const folder = mkdtempSync(join(args.scratch ?? "/tmp", "page-"));
  const { out, files } = await bundle(folder, ENTRY, WORKERS, Boolean(args.browser));
  const pipelines = join(NPM, "@itk-wasm/downsample/dist/pipelines");
  const server = await pageServer(out, files, args.record, { isolated: true, mounts: { "pipelines/": pipelines } });
  const browser = await open(args, folder);
  try {
    record.observations.push(`${await browser.version()}, itk-wasm ${packageJson("itk-wasm").version}, @itk-wasm/downsample ${packageJson("@itk-wasm/downsample").version}`);
    const page = await browser.page(`http://127.0.0.1:${server.address().port}`);
    const said = page.said;
    const b64 = Buffer.from(values.buffer, values.byteOffset, values.byteLength).toString("base64");
    let got;
    try {
      got = await page.evaluate(inPage, b64, spec, ome);
    } catch (err) {
      const first = String(browser.lost(err)?.message ?? err).split("\n")[0];
      throw new Error((said.length ? `${first} (the browser: ${said.join(" | ")})` : first).slice(0, 2000));
    }
    if (!got.isolated) record.observations.push("the page was not cross-origin isolated");
    const zip = Buffer.from(got.zip, "base64");
    writeFileSync(args.archive, zip); // the runner names archives .zip; the bytes are the .ozx
    const root = JSON.parse(zipEntry(zip, "zarr.json").toString("utf-8"));
    const arrays = {};
    for (const [path, level] of Object.entries(got.levels)) {
      const meta = JSON.parse(zipEntry(zip, `${path}/zarr.json`).toString("utf-8"));
      const bytes = Buffer.from(level.bytes, "base64");
      const copy = new Uint8Array(bytes.length);
      copy.set(bytes);
      const Typed = values.constructor;
      const data = new Typed(copy.buffer, 0, copy.length / Typed.BYTES_PER_ELEMENT);
      const chunk = { data, shape: level.shape, stride: level.shape.map((_, i) => level.shape.slice(i + 1).reduce((a, b) => a * b, 1)) };
      arrays[path] = describe(chunk, {
        dtype: level.dtype,
        chunks: innerChunks(meta),
        fillValue: meta.fill_value ?? null,
        attrs: meta.attributes ?? {},
        dimensionNames: meta.dimension_names ?? undefined,
      }, record);
    }
    const first = Object.keys(got.levels)[0];
    const level0 = Buffer.from(got.levels[first].bytes, "base64");
    if (!level0.equals(Buffer.from(values.buffer, values.byteOffset, values.byteLength))) {
      record.observations.push(`ngff-zarr's level ${first} does not hold the fixture's values`);
    }
    return {
      zarr_format: 3,
      method: "ozx",
      expected: { arrays, attrs: root.attributes ?? {} },
      timings: { write_s: got.seconds },
    };
  } finally {
    await browser.close();
    server.close();
    rmSync(folder, { recursive: true, force: true });
  }
}

await finish(args, record, write, "writer");
