// zarrita.js in a real browser: Debian's Chromium, headless, driven by puppeteer-core, reading the archive over
// HTTP the way every web viewer does (ZipFileStore.fromUrl: fetch with Range headers). Same protocol as the
// other probes (see zarrita_common.mjs):
//
//     node zarrita_browser_probe.mjs ARGS.json        -> the record at args.record
//
// zarrita and @zarrita/storage are bundled for the browser with esbuild (an ES module, codecs split into
// chunks loaded on demand) and served with a blank page from a loopback server of this probe's own, so the
// page's origin (http://127.0.0.1:PORT) is not the archive's (http://range.zipstore:8080): the browser's CORS
// rules decide, as on the web. A loopback page may fetch from the run's private network under Chromium's Local
// Network Access rules (a public page could not without the user's permission). Each timed read opens a new
// ZipFileStore at its own URL; the values leave the page as bytes and are described here exactly as the
// Node probe describes them. What the browser said on its console (a CORS refusal) is the reason of a failure.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";

import { bundle, open, pageServer } from "./browser_common.mjs";
import { RECORD_VERSION, TYPED, describe, finish, joined, median, packageJson } from "./zarrita_common.mjs";

const args = JSON.parse(readFileSync(process.argv[2], "utf-8"));
const record = { record_version: RECORD_VERSION, library: "zarrita", warnings: [], observations: [] };
const ENTRY = 'export * as zarr from "zarrita"; export { default as ZipFileStore } from "@zarrita/storage/zip";';

/** In the page: open every array at `url` and read it whole, or the regions `part` names for it (a fixture
 *  too large to read whole over HTTP), or with `one` the first chunk of the first array. Each region read
 *  leaves the page as one piece: bytes (typed arrays) or values, with its shape and strides. */
async function inPage(url, paths, format, one, part, folder) {
  const { zarr, ZipFileStore } = await import("/entry.js");
  const open = format === 2 ? zarr.open.v2 : format === 3 ? zarr.open.v3 : zarr.open;
  const started = performance.now();
  const store = ZipFileStore.fromUrl(url); // call: zarrita-browser@http
  const root = folder ? zarr.root(store).resolve(folder) : zarr.root(store); // call: zarrita-browser@http
  const piece = (got) => {
    const chunk = got && typeof got === "object" && "data" in got ? got : { data: [got], shape: [], stride: [] };
    const data = chunk.data;
    const typed = ArrayBuffer.isView(data) || (data && data.buffer instanceof ArrayBuffer && !Array.isArray(data));
    let bytes = null;
    let values = null;
    if (typed) {
      const view = ArrayBuffer.isView(data) ? data : new Uint8Array(data.buffer);
      const raw = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
      let text = "";
      for (let i = 0; i < raw.length; i += 0x8000) text += String.fromCharCode(...raw.subarray(i, i + 0x8000));
      bytes = btoa(text);
    } else {
      values = Array.from({ length: data.length }, (_, i) => (Array.isArray(data) ? data[i] : data.get(i)));
      values = values.map((v) => (typeof v === "bigint" ? v.toString() : v));
    }
    return { bytes, values, shape: chunk.shape, stride: chunk.stride };
  };
  const out = {};
  for (const path of one ? paths.slice(0, 1) : paths) {
    const arr = await open(path ? root.resolve(path) : root, { kind: "array" }); // call: zarrita-browser@http
    const regions = one ? [arr.shape.map((s, i) => [0, Math.max(1, Math.min(s, arr.chunks[i]))])] : part?.[path];
    const pieces = [];
    for (const region of regions ?? [null]) {
      const selection = region && region.map(([a, b]) => zarr.slice(a, b));
      pieces.push(piece(await zarr.get(arr, selection))); // call: zarrita-browser@http
    }
    out[path] = {
      pieces,
      whole: !regions,
      dtype: String(arr.dtype),
      chunks: arr.chunks,
      fillValue: typeof arr.fillValue === "bigint" ? Number(arr.fillValue) : arr.fillValue,
      attrs: arr.attrs ?? {},
      dimensionNames: arr.dimensionNames ?? null,
    };
  }
  return { arrays: out, seconds: (performance.now() - started) / 1000 };
}

/** A page array as the Node probe would have it, for the same describe(): its one piece, or its pieces
 *  joined as the Node probe joins a part read. */
function fromPage(got) {
  const Typed = TYPED[got.dtype] ?? Uint8Array;
  const chunks = got.pieces.map((p) => {
    let data;
    if (p.bytes !== null) {
      const buffer = Buffer.from(p.bytes, "base64");
      const copy = new Uint8Array(buffer.length);
      copy.set(buffer);
      const bytesPer = Typed.BYTES_PER_ELEMENT ?? 1;
      const boolean = got.dtype === "bool";
      data = boolean || /^v2:S/.test(got.dtype) ? { buffer: copy.buffer, length: copy.length } : new Typed(copy.buffer, 0, copy.length / bytesPer);
    } else {
      data = p.values;
    }
    return { data, shape: p.shape, stride: p.stride };
  });
  const result = got.whole ? chunks[0] : joined(chunks);
  const arr = { dtype: got.dtype, chunks: got.chunks, fillValue: got.fillValue, attrs: got.attrs, dimensionNames: got.dimensionNames ?? undefined };
  return [result, arr];
}

async function read() {
  record.version = packageJson("zarrita").version;
  record.observations.push(`@zarrita/storage ${packageJson("@zarrita/storage").version}`);
  if ((args.access ?? "file") === "file") {
    return Promise.reject(new Error("the browser probe reads over HTTP only (a page has no file path)"));
  }
  const folder = mkdtempSync(join(args.scratch ?? "/tmp", "page-"));
  const { out, files } = await bundle(folder, ENTRY, [], Boolean(args.browser));
  const server = await pageServer(out, files, args.record);
  const origin = `http://127.0.0.1:${server.address().port}`;
  const browser = await open(args, folder);
  try {
    record.observations.push(`${await browser.version()}, page origin ${origin}`);
    const page = await browser.page(origin);
    const said = page.said;
    const repeats = Math.max(1, Number(args.repeats ?? 3));
    const samples = [];
    let last = null;
    for (let n = 0; n < repeats; n++) {
      try {
        const url = args.url.replace("{phase}", `r${n}`);
        last = await page.evaluate(inPage, url, args.arrays, args.zarr_format, false, args.part ?? null, args.root ?? "");
      } catch (err) {
        // the page's own exception ("Failed to fetch"), with what the browser said on its console (CORS)
        const first = String(browser.lost(err)?.message ?? err).split("\n")[0];
        const words = said.length ? `${first} (the browser: ${said.join(" | ")})` : first;
        throw new Error(words.slice(0, 2000));
      }
      samples.push(last.seconds);
    }
    try {
      const one = args.url.replace("{phase}", "one");
      await page.evaluate(inPage, one, args.arrays, args.zarr_format, true, null, args.root ?? "");
    } catch (err) {
      record.observations.push(`reading one chunk over HTTP failed: ${String(err?.message ?? err).slice(0, 500)}`);
    }
    const arrays = {};
    for (const path of args.arrays) {
      const [result, arr] = fromPage(last.arrays[path]);
      arrays[path] = describe(result, arr, record);
    }
    return { arrays, timings: { read_s: median(samples), read_samples: samples } };
  } finally {
    await browser.close();
    server.close();
    rmSync(folder, { recursive: true, force: true });
  }
}

await finish(args, record, read);
