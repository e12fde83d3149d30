// zarrita.js reader probe: the browser's Zarr library, under Node, on a zip through @zarrita/storage's
// ZipFileStore (read-only, built on unzipit). Same protocol as the Python probes (see _common.py):
//
//     node zarrita_probe.mjs ARGS.json        -> the record at args.record (record_version 1)
//
// The archive is opened from its bytes (ZipFileStore.fromBlob, as a page does with a File), every array
// the host names is opened (zarr.open.v2 / .v3 when the format is known) and read whole (zarr.get), and
// shape, dtype, chunks, fill value, attributes and the SHA-256 of the values (little-endian, C order, as
// the Python probes hash them) are reported for the host to compare. The npm packages live in the image
// under /opt/npm (ZIPSTORE_NPM overrides); blosc, lz4 and zstd come from the npm `numcodecs` package,
// which zarrita loads itself. Sources: zarrita.js packages/@zarrita-storage/src/zip.ts, src/codecs.ts.
import { readFileSync } from "node:fs";

import { RECORD_VERSION, describe, finish, load, median, packageJson, readValues, rootAttrs } from "./zarrita_common.mjs";

const args = JSON.parse(readFileSync(process.argv[2], "utf-8"));
const record = { record_version: RECORD_VERSION, library: "zarrita", warnings: [] };

async function read() {
  const zarr = await load("zarrita");
  const { default: ZipFileStore } = await load("@zarrita/storage", "./zip");
  const version = packageJson("zarrita").version;
  record.version = version;
  record.observations = [`@zarrita/storage ${packageJson("@zarrita/storage").version}, Node ${process.versions.node}`];
  const format = args.zarr_format;
  const open = format === 2 ? zarr.open.v2 : format === 3 ? zarr.open.v3 : zarr.open;
  const repeats = Math.max(1, Number(args.repeats ?? 3));
  const http = (args.access ?? "file") !== "file";
  const samples = [];
  let values = {};
  let nodes = {};
  let root;
  let openS;
  // Over HTTP: ZipFileStore.fromUrl (HTTP Range requests through fetch), each timed read on its own URL so
  // no cache carries over and the server's log counts each read. On a file: the archive's bytes in a Blob.
  const openAll = async (store) => {
    // a store zipped from its parent is opened at its folder inside the archive
    const r = args.root ? zarr.root(store).resolve(args.root) : zarr.root(store); // call: zarrita-zip
    const found = {};
    for (const path of args.arrays) {
      found[path] = await open(path ? r.resolve(path) : r, { kind: "array" }); // call: zarrita-zip
    }
    return [r, found];
  };
  if (http) {
    for (let n = 0; n < repeats; n++) {
      const started = performance.now();
      const store = ZipFileStore.fromUrl(args.url.replace("{phase}", `r${n}`)); // call: zarrita-zip@http
      // the URL with this read's phase filled in: each timed read asks its own URL
      [root, nodes] = await openAll(store);
      values = {};
      for (const path of args.arrays) values[path] = await readValues(zarr, nodes[path], args.part?.[path]);
      samples.push((performance.now() - started) / 1000);
    }
    try {
      const [, one] = await openAll(ZipFileStore.fromUrl(args.url.replace("{phase}", "one")));
      const arr = one[args.arrays[0]];
      await zarr.get(arr, arr.shape.map((s, i) => zarr.slice(0, Math.max(1, Math.min(s, arr.chunks[i])))));
    } catch (err) {
      record.observations.push(`reading one chunk over HTTP failed: ${String(err?.message ?? err).slice(0, 500)}`);
    }
  } else {
    const bytes = readFileSync(args.archive); // call: zarrita-zip
    let started = performance.now();
    const store = ZipFileStore.fromBlob(new Blob([bytes])); // call: zarrita-zip
    [root, nodes] = await openAll(store);
    openS = (performance.now() - started) / 1000;
    for (let n = 0; n < repeats; n++) {
      started = performance.now();
      values = {};
      for (const path of args.arrays) values[path] = await zarr.get(nodes[path]); // call: zarrita-zip
      samples.push((performance.now() - started) / 1000);
    }
  }
  const arrays = {};
  for (const path of args.arrays) arrays[path] = describe(values[path], nodes[path], record);
  const timings = { read_s: median(samples), read_samples: samples };
  if (openS !== undefined) timings.open_s = openS;
  const result = { arrays, timings };
  const attrs = await rootAttrs(open, root);
  if (attrs !== undefined) result.attrs = attrs;
  return result;
}

await finish(args, record, read);
