/**
 * `loadNodeConfig` reads JSON, YAML and TOML by extension into the same
 * validated config: one node config written in each format loads to equal
 * values, a field error names the field whatever the format, and a file that
 * does not parse names the file, line and column in every format.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NodeError, configFormatOf, loadNodeConfig } from "../../../node/src/node/config.js";

const DISCOVERY = "ab".repeat(32);

const json = JSON.stringify(
  {
    listen: { host: "0.0.0.0", port: 9001 },
    advertise: { host: "relay.example.org", port: 9001 },
    roles: ["onion"],
    dataDir: "/var/lib/psp",
    api: { host: "127.0.0.1", port: 8601 },
    identity: { keyFile: "/etc/psp/node.key", passphraseEnv: "PSP_NODE_KEY_PASSWORD" },
    directory: { discovery: [{ identity: DISCOVERY, host: "203.0.113.7", port: 9001 }] },
    chain: { rpcUrl: "https://rpc.example.org", deploymentFile: "/etc/psp/deployment.json", chainId: 8453, confirmations: 3 },
    log: { level: "info", name: "relay-1" },
  },
  null,
  2,
);

const yaml = `# the same node, in YAML
listen: { host: 0.0.0.0, port: 9001 }
advertise:
  host: relay.example.org
  port: 9001
roles: [onion]
dataDir: /var/lib/psp
api: { host: 127.0.0.1, port: 8601 }
identity:
  keyFile: /etc/psp/node.key
  passphraseEnv: PSP_NODE_KEY_PASSWORD
directory:
  discovery:
    - identity: "${DISCOVERY}"
      host: 203.0.113.7
      port: 9001
chain:
  rpcUrl: https://rpc.example.org
  deploymentFile: /etc/psp/deployment.json
  chainId: 8453
  confirmations: 3
log: { level: info, name: relay-1 }
`;

const toml = `# the same node, in TOML
roles = ["onion"]
dataDir = "/var/lib/psp"

[listen]
host = "0.0.0.0"
port = 9001

[advertise]
host = "relay.example.org"
port = 9001

[api]
host = "127.0.0.1"
port = 8601

[identity]
keyFile = "/etc/psp/node.key"
passphraseEnv = "PSP_NODE_KEY_PASSWORD"

[[directory.discovery]]
identity = "${DISCOVERY}"
host = "203.0.113.7"
port = 9001

[chain]
rpcUrl = "https://rpc.example.org"
deploymentFile = "/etc/psp/deployment.json"
chainId = 8453
confirmations = 3

[log]
level = "info"
name = "relay-1"
`;

describe("node config formats", () => {
  let dir: string;
  const file = async (name: string, text: string): Promise<string> => {
    const path = join(dir, name);
    await writeFile(path, text);
    return path;
  };
  /** The NodeError loading `path` throws. */
  const failure = async (path: string): Promise<NodeError> => {
    const err = await loadNodeConfig(path).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(NodeError);
    return err as NodeError;
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "psp-config-formats-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("picks the format by extension, case-insensitively", () => {
    expect(configFormatOf("node.json")).toBe("JSON");
    expect(configFormatOf("node.YAML")).toBe("YAML");
    expect(configFormatOf("/etc/psp/node.yml")).toBe("YAML");
    expect(configFormatOf("node.toml")).toBe("TOML");
    expect(configFormatOf("node.ini")).toBeUndefined();
    expect(configFormatOf("node")).toBeUndefined();
  });

  it("loads one config written in JSON, YAML and TOML to the same value", async () => {
    const fromJson = await loadNodeConfig(await file("node.json", json));
    const fromYaml = await loadNodeConfig(await file("node.yaml", yaml));
    const fromYml = await loadNodeConfig(await file("node.yml", yaml));
    const fromToml = await loadNodeConfig(await file("node.toml", toml));
    expect(fromJson.chain?.chainId).toBe(8453);
    expect(fromJson.directory?.discovery[0]?.identity).toBe(DISCOVERY);
    expect(fromYaml).toEqual(fromJson);
    expect(fromYml).toEqual(fromJson);
    expect(fromToml).toEqual(fromJson);
  });

  it("names the same field whatever the format", async () => {
    const cases = [
      await file("port.json", json.replace('"port": 9001', '"port": 70000')),
      await file("port.yaml", yaml.replace("port: 9001 }", "port: 70000 }")),
      await file("port.toml", toml.replace("port = 9001", "port = 70000")),
    ];
    for (const path of cases) {
      const err = await failure(path);
      expect(err.kind).toBe("bad-config");
      expect(err.message).toMatch(/^config listen\.port: must be an integer 0\.\.65535/);
    }
    const chainIds = [
      await file("chain.json", json.replace('"chainId": 8453', '"chainId": "base"')),
      await file("chain.yaml", yaml.replace("chainId: 8453", "chainId: base")),
      await file("chain.toml", toml.replace("chainId = 8453", 'chainId = "base"')),
    ];
    for (const path of chainIds) expect((await failure(path)).message).toMatch(/^config chain\.chainId: must be the chain's id/);
  });

  it("names the file, line and column of a file that does not parse", async () => {
    const cases: [string, string, RegExp][] = [
      [
        "bad.json",
        '{\n  "listen": { "host": "0.0.0.0", "port": 9001 },\n  "roles": ["onion",]\n}\n',
        /bad\.json is not valid JSON: line 3, column 21: Unexpected token/,
      ],
      ["bad.yaml", "listen:\n  host: 0.0.0.0\n  port: 9001\nroles: [onion\n", /bad\.yaml is not valid YAML: line \d+, column \d+/],
      ["dup.yaml", "listen: { host: a, port: 1 }\nlisten: { host: b, port: 2 }\n", /dup\.yaml is not valid YAML: line 2, column 1/],
      ["bad.toml", '[listen]\nhost = "0.0.0.0"\nport = = 9001\n', /bad\.toml is not valid TOML: line 3, column \d+/],
      ["dup.toml", '[listen]\nhost = "a"\nport = 1\n[listen]\nport = 2\n', /dup\.toml is not valid TOML: line \d+, column \d+/],
    ];
    for (const [name, text, pattern] of cases) {
      const err = await failure(await file(name, text));
      expect(err.kind).toBe("bad-config");
      expect(err.message).toMatch(pattern);
      expect(err.message).not.toContain("\n");
      expect(err.fix).toMatch(/^correct .* at line \d+, column \d+$/);
    }
  });

  it("refuses a document that is not one table, an unknown extension and a missing file", async () => {
    expect((await failure(await file("list.yaml", "- listen\n- roles\n"))).message).toMatch(/list\.yaml must hold one object/);
    expect((await failure(await file("empty.yaml", ""))).message).toMatch(/empty\.yaml must hold one object/);
    const ini = await failure(await file("node.ini", "listen=1"));
    expect(ini.message).toMatch(/unknown format "\.ini"/);
    expect(ini.fix).toMatch(/\*\.json, \*\.yaml, \*\.yml, \*\.toml/);
    expect((await failure(join(dir, "missing.toml"))).message).toMatch(/cannot read config file .*missing\.toml/);
  });
});
