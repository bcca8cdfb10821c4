// Validate Kubernetes objects (a JSON array on stdin) against the API
// schemas shipped in npm's kubernetes-models (and the External Secrets
// models), installed by scripts/bootstrap under .tools/node.
//   BG_NODE_MODULES=.tools/node/node_modules node k8s_validate.mjs < objects.json
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const modules = process.env.BG_NODE_MODULES;
const objects = JSON.parse(readFileSync(0, "utf8"));
let failed = 0;
for (const o of objects) {
  const [group, version] = o.apiVersion.includes("/") ? o.apiVersion.split("/") : ["", o.apiVersion];
  const pkg = group.endsWith("external-secrets.io")
    ? join("@kubernetes-models", "external-secrets", group, version)
    : join("kubernetes-models", group, version);
  const what = `${o.kind}/${o.metadata.name}`;
  try {
    const mod = await import(pathToFileURL(join(modules, pkg, "index.js")).href);
    if (!mod[o.kind]) throw new Error(`no model for ${o.apiVersion} ${o.kind}`);
    new mod[o.kind](o).validate();
    console.log(`valid   ${o.apiVersion} ${what}`);
  } catch (e) {
    failed++;
    console.log(`INVALID ${o.apiVersion} ${what}: ${e.message}`);
  }
}
process.exit(failed ? 1 : 0);
