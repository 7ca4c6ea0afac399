// Parses Mermaid files with the real Mermaid parser and reports what it read,
// for tests/graph.rs.
//
//   node tests/mermaid/check.mjs MODULES_DIR FILE...
//
// MODULES_DIR holds node_modules with the packages pinned in package.json
// next to this file (scripts/test puts them in target/mermaid-check).
// One JSON line per file:
//   {"file", "ok": true, "type", "vertices": [{"id", "text", "shape"}],
//    "edges": [{"start", "end", "text"}]}
// or {"file", "ok": false, "error"}. Texts are what a browser would show:
// Mermaid's entity codes decoded and line breaks as "\n". Exit code 1 when
// any file fails to parse, 2 on bad usage.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const [modulesDir, ...files] = process.argv.slice(2);
if (!modulesDir || files.length === 0) {
  console.error('usage: check.mjs MODULES_DIR FILE...');
  process.exit(2);
}
const require = createRequire(resolve(modulesDir, 'package.json'));

// Mermaid sanitizes labels with DOMPurify, which needs a DOM: give it jsdom's
// window before Mermaid (and so DOMPurify) is loaded.
const { JSDOM } = require('jsdom');
const { window } = new JSDOM('');
globalThis.window = window;
globalThis.document = window.document;
const { default: mermaid } = await import(pathToFileURL(require.resolve('mermaid')).href);
mermaid.initialize({ startOnLoad: false, securityLevel: 'strict' });

// Mermaid keeps `#name;` and `#35;` as private markers until it draws;
// undo them the way it does, then let the DOM read the HTML as a browser.
function shown(text) {
  const html = String(text ?? '')
    .replace(/ﬂ°°/g, '&#')
    .replace(/ﬂ°/g, '&')
    .replace(/¶ß/g, ';')
    .replace(/<br\s*\/?>/gi, '\n');
  const el = window.document.createElement('div');
  el.innerHTML = html;
  return el.textContent;
}

let failed = false;
for (const file of files) {
  try {
    const diagram = await mermaid.mermaidAPI.getDiagramFromText(readFileSync(file, 'utf8'));
    const db = diagram.db;
    console.log(JSON.stringify({
      file,
      ok: true,
      type: diagram.type,
      vertices: [...db.getVertices().values()].map((v) => ({ id: v.id, text: shown(v.text), shape: v.type })),
      edges: db.getEdges().map((e) => ({ start: e.start, end: e.end, text: shown(e.text) })),
    }));
  } catch (e) {
    failed = true;
    console.log(JSON.stringify({ file, ok: false, error: String(e?.message ?? e) }));
  }
}
process.exit(failed ? 1 : 0);
