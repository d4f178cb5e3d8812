#!/usr/bin/env node
// Before a release (.github/workflows/publish.yml): the tag names the version that package.json
// and deno.json both carry, and package.json's repository is the repository publishing it (npm
// refuses a provenance statement from another, or with none named).
//
//   node scripts/release_check.mjs TAG [OWNER/REPO]      e.g. v0.1.0 winpipe/winpipe
//
// Exit status 0 when all holds; 1, with every problem listed, when not.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const [tag, github] = process.argv.slice(2);
if (!tag) {
  console.error("usage: node scripts/release_check.mjs TAG [OWNER/REPO]");
  process.exit(2);
}
const read = (f) => JSON.parse(readFileSync(join(repo, f), "utf8"));
const npm = read("package.json");
const jsr = read("deno.json");

const problems = [];
if (!/^v\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$/.test(tag)) {
  problems.push(`the tag ${tag} is not v<major>.<minor>.<patch>[-<pre-release>]`);
}
for (const [file, version] of [["package.json", npm.version], ["deno.json", jsr.version]]) {
  if (`v${version}` !== tag) problems.push(`${file} has version ${version}, the tag is ${tag}`);
}
if (github) {
  // "git+https://github.com/o/r.git", "https://github.com/o/r", or "github:o/r".
  const url = typeof npm.repository === "string" ? npm.repository : npm.repository?.url ?? "";
  const named = url.replace(/^git\+/, "").replace(/\.git$/, "").replace(/^github:/, "");
  if (named !== `https://github.com/${github}` && named !== github) {
    problems.push(
      `package.json's repository is ${JSON.stringify(url)}; npm's provenance check needs `
        + `"repository": { "type": "git", "url": "git+https://github.com/${github}.git" }`,
    );
  }
}

if (problems.length) {
  for (const p of problems) console.error(`release check: ${p}`);
  process.exit(1);
}
console.log(`release check: ${tag} is the version of package.json and deno.json`);
