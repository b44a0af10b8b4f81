/**
 * `deno bench tests/bench/json_bench.ts`: reading and writing a docker config.json with the exact JSON module
 * against JSON.parse and JSON.stringify (which lose digits). The shim does one read and one write per create.
 */
import { parseJson, stringifyJson } from "../../lib/sys/json.ts";
import { dockerSpecText, MEMORY_MAX, UINT64_MAX } from "../../fixtures/docker_spec.ts";

const docs: [string, string][] = [
  ["10 KB, docker --ulimit memlock=-1", dockerSpecText()],
  ["17 KB, the same with 25 Kubernetes services", dockerSpecText(undefined, 25)],
  [
    "10 KB, no number above 2^53",
    dockerSpecText().replaceAll(UINT64_MAX, "1048576").replaceAll(MEMORY_MAX, "1073741824"),
  ],
];

for (const [name, text] of docs) {
  Deno.bench({ name: `JSON.parse + JSON.stringify: ${name}`, group: name, baseline: true }, () => {
    JSON.stringify(JSON.parse(text));
  });
  Deno.bench({ name: `parseJson + stringifyJson: ${name}`, group: name }, () => {
    stringifyJson(parseJson(text));
  });
}

// Last: once a document with reordered integer keys has been read, every write takes the walking writer.
const reordered = dockerSpecText().replace('{"ociVersion"', '{"b":0,"1":1,"ociVersion"');
Deno.bench(
  { name: "parseJson + stringifyJson, file key order kept (walking writer)", group: "order" },
  () => {
    stringifyJson(parseJson(reordered));
  },
);
