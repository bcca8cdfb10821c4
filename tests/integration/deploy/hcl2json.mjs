// Parse HCL files with npm's @cdktf/hcl2json (installed by scripts/bootstrap
// under .tools/node) and print {file: json} on stdout.
//   BG_NODE_MODULES=.tools/node/node_modules node hcl2json.mjs FILE...
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";

const require = createRequire(resolve(process.env.BG_NODE_MODULES) + "/");
const { parse } = require("@cdktf/hcl2json");
const out = {};
for (const f of process.argv.slice(2)) out[f] = await parse(f, readFileSync(f, "utf8"));
console.log(JSON.stringify(out));
