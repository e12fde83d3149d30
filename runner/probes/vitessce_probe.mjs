// @vitessce/zarr-utils reader probe: how the web viewers (Vitessce, and the viewers built on its loaders)
// open a zipped Zarr store, under Node. Same protocol as the Python probes (see _common.py):
//
//     node vitessce_probe.mjs ARGS.json        -> the record at args.record (record_version 1)
//
// zarrOpenRoot(url, fileType) with a fileType ending in ".zip" opens @zarrita/storage's ZipFileStore.fromUrl
// (HTTP Range requests through fetch) and strips one top-level "*.zarr/" folder from the entries' names; a
// viewer is only ever given a URL, so this reader reads over HTTP only. The probe does not tell it where the
// store sits inside the archive (the host gives it no root): what the viewer finds on its own is what the cell
// measures. Arrays are read
// with the zarrita the package depends on (hoisted next to it under /opt/npm). Sources:
// @vitessce/zarr-utils src/normalize.ts (zarrOpenRoot, transformEntriesForZipFileStore), ZIPSTORE-FACTS.md.
import { readFileSync } from "node:fs";

import { RECORD_VERSION, describe, finish, load, median, packageJson, readValues, rootAttrs } from "./zarrita_common.mjs";

const args = JSON.parse(readFileSync(process.argv[2], "utf-8"));
const record = { record_version: RECORD_VERSION, library: "vitessce-zarr-utils", warnings: [] };

async function read() {
  const { zarrOpenRoot } = await load("@vitessce/zarr-utils"); // call: vitessce-zip@http
  const zarr = await load("zarrita");
  record.version = packageJson("@vitessce/zarr-utils").version;
  record.observations = [
    `zarrita ${packageJson("zarrita").version}, @zarrita/storage ${packageJson("@zarrita/storage").version}, ` +
      `Node ${process.versions.node}`,
  ];
  const format = args.zarr_format;
  const open = format === 2 ? zarr.open.v2 : format === 3 ? zarr.open.v3 : zarr.open;
  const samples = [];
  let root;
  let nodes = {};
  let values = {};
  const name = (url) => new URL(url).pathname.split("/").pop();
  // each timed read on its own URL: no cache carries over, and the server's log counts each read
  for (let n = 0; n < Math.max(1, Number(args.repeats ?? 3)); n++) {
    const url = args.url.replace("{phase}", `r${n}`);
    const started = performance.now();
    root = zarrOpenRoot(url, name(url)); // call: vitessce-zip@http
    nodes = {};
    values = {};
    for (const path of args.arrays) {
      nodes[path] = await open(path ? root.resolve(path) : root, { kind: "array" }); // call: vitessce-zip@http
      values[path] = await readValues(zarr, nodes[path], args.part?.[path]);
    }
    samples.push((performance.now() - started) / 1000);
  }
  try {
    const one = zarrOpenRoot(args.url.replace("{phase}", "one"), name(args.url));
    const arr = await open(args.arrays[0] ? one.resolve(args.arrays[0]) : one, { kind: "array" });
    await zarr.get(arr, arr.shape.map((s, i) => zarr.slice(0, Math.max(1, Math.min(s, arr.chunks[i])))));
  } catch (err) {
    record.observations.push(`reading one chunk over HTTP failed: ${String(err?.message ?? err).slice(0, 500)}`);
  }
  const arrays = {};
  for (const path of args.arrays) arrays[path] = describe(values[path], nodes[path], record);
  const result = { arrays, timings: { read_s: median(samples), read_samples: samples } };
  const attrs = await rootAttrs(open, root);
  if (attrs !== undefined) result.attrs = attrs;
  return result;
}

await finish(args, record, read);
