/**
 * A minimal client of the Kubernetes CRI v1 API (runtime.v1.RuntimeService and ImageService) for the tests:
 * gRPC over HTTP/2 on a unix socket (node:http2), with the few messages it needs encoded and decoded by hand
 * in protobuf's wire format. Field numbers are those of k8s.io/cri-api's api.proto.
 */
import http2 from "node:http2";
import net from "node:net";
import { join } from "node:path";
import { ociArchive, rootfsTarball } from "./_image.ts";

// ---- protobuf wire format ----

const enc = new TextEncoder();
const dec = new TextDecoder();

function varint(n: number | bigint): number[] {
  let v = BigInt(n);
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}

/** Concatenates encoded fields into one message. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** A length-delimited field (a string, bytes or an embedded message). */
export function bytesField(field: number, data: Uint8Array): Uint8Array {
  return concat(new Uint8Array([...varint((field << 3) | 2), ...varint(data.length)]), data);
}

/** A string field; an empty string is left out, as proto3 does. */
export function str(field: number, s: string): Uint8Array {
  return s === "" ? new Uint8Array() : bytesField(field, enc.encode(s));
}

/** A varint field (integers, enums, booleans); zero is left out, as proto3 does. */
export function uint(field: number, n: number | bigint | boolean): Uint8Array {
  const v = typeof n === "boolean" ? (n ? 1 : 0) : n;
  return BigInt(v) === 0n ? new Uint8Array() : new Uint8Array([...varint(field << 3), ...varint(v)]);
}

/** An embedded message field. */
export function msg(field: number, ...parts: Uint8Array[]): Uint8Array {
  return bytesField(field, concat(...parts));
}

/** A map<string, string> field: one entry message (key 1, value 2) per pair. */
export function strMap(field: number, m: Record<string, string>): Uint8Array {
  return concat(...Object.entries(m).map(([k, v]) => msg(field, str(1, k), str(2, v))));
}

/** A decoded message: every field's values in order (varints as bigint, length-delimited as bytes). */
export type Decoded = Map<number, (bigint | Uint8Array)[]>;

/** Decodes one message of protobuf's wire format. */
export function decode(buf: Uint8Array): Decoded {
  const out: Decoded = new Map();
  let i = 0;
  const readVarint = (): bigint => {
    let v = 0n;
    let shift = 0n;
    for (;;) {
      if (i >= buf.length) throw new Error("Truncated varint in a CRI reply");
      const b = buf[i++];
      v |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
      shift += 7n;
    }
  };
  while (i < buf.length) {
    const key = Number(readVarint());
    const field = key >> 3;
    let value: bigint | Uint8Array;
    switch (key & 7) {
      case 0:
        value = readVarint();
        break;
      case 1:
        value = buf.slice(i, i + 8);
        i += 8;
        break;
      case 2: {
        const n = Number(readVarint());
        value = buf.slice(i, i + n);
        i += n;
        break;
      }
      case 5:
        value = buf.slice(i, i + 4);
        i += 4;
        break;
      default:
        throw new Error(`Unsupported wire type ${key & 7} in a CRI reply`);
    }
    const list = out.get(field) ?? [];
    list.push(value);
    out.set(field, list);
  }
  return out;
}

/** A string field of a decoded message ("" when absent). */
export function getStr(m: Decoded, field: number): string {
  const v = m.get(field)?.[0];
  return v instanceof Uint8Array ? dec.decode(v) : "";
}

/** Every string of a repeated string field. */
export function getStrs(m: Decoded, field: number): string[] {
  return (m.get(field) ?? []).filter((v) => v instanceof Uint8Array).map((v) => dec.decode(v as Uint8Array));
}

/** An integer field of a decoded message (0 when absent). */
export function getInt(m: Decoded, field: number): number {
  const v = m.get(field)?.[0];
  return typeof v === "bigint" ? Number(BigInt.asIntN(64, v)) : 0;
}

/** An embedded message field of a decoded message (empty when absent). */
export function getMsg(m: Decoded, field: number): Decoded {
  const v = m.get(field)?.[0];
  return v instanceof Uint8Array ? decode(v) : new Map();
}

// ---- gRPC over HTTP/2 ----

/** A gRPC call that ended with a non-zero status. */
export class GrpcError extends Error {
  constructor(readonly path: string, readonly status: number, message: string) {
    super(`${path}: gRPC status ${status}: ${message}`);
  }
}

/** A gRPC connection to a unix socket. */
export class GrpcClient {
  #session: http2.ClientHttp2Session;

  constructor(socket: string) {
    this.#session = http2.connect("http://localhost", { createConnection: () => net.connect(socket) });
    this.#session.on("error", () => {/* reported by the calls */});
  }

  /** Calls `path` (/package.Service/Method) with one request message; resolves to the reply message. */
  call(path: string, request: Uint8Array, timeoutMs = 120_000): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      const frame = new Uint8Array(5 + request.length);
      new DataView(frame.buffer).setUint32(1, request.length);
      frame.set(request, 5);
      const req = this.#session.request({
        ":method": "POST",
        ":path": path,
        "content-type": "application/grpc",
        te: "trailers",
      });
      const chunks: Uint8Array[] = [];
      let status: string | undefined;
      let message = "";
      const take = (h: Record<string, unknown>) => {
        if (h["grpc-status"] !== undefined) status = String(h["grpc-status"]);
        if (h["grpc-message"] !== undefined) message = decodeURIComponent(String(h["grpc-message"]));
      };
      const timer = setTimeout(() => {
        req.close();
        reject(new Error(`${path}: no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      req.on("response", take);
      req.on("trailers", take);
      req.on("data", (c: Uint8Array) => chunks.push(c));
      req.on("error", (err: Error) => {
        clearTimeout(timer);
        reject(err);
      });
      req.on("end", () => {
        clearTimeout(timer);
        if (status !== "0") {
          reject(new GrpcError(path, Number(status ?? -1), message || "(no message)"));
          return;
        }
        const body = concat(...chunks);
        if (body.length < 5) {
          reject(new Error(`${path}: a reply without a message`));
          return;
        }
        const n = new DataView(body.buffer, body.byteOffset).getUint32(1);
        resolve(body.slice(5, 5 + n));
      });
      req.end(frame);
    });
  }

  /** Closes the connection. */
  close(): void {
    this.#session.close();
  }
}

// ---- CRI v1 ----

const RUNTIME = "/runtime.v1.RuntimeService/";
const IMAGE = "/runtime.v1.ImageService/";

/** NamespaceMode: the pod's namespaces or the node's. */
export const NamespaceMode = { POD: 0, CONTAINER: 1, NODE: 2 } as const;
/** ContainerState. */
export const ContainerState = { CREATED: 0, RUNNING: 1, EXITED: 2, UNKNOWN: 3 } as const;

/** What a test says about a pod sandbox. */
export interface PodConfig {
  name: string;
  uid: string;
  namespace: string;
  /** Folder of the containers' log files. */
  logDirectory: string;
  /** The node's network namespace instead of one made through CNI. */
  hostNetwork?: boolean;
  annotations?: Record<string, string>;
}

/** What a test says about a container. */
export interface ContainerConfig {
  name: string;
  image: string;
  command: string[];
  env?: Record<string, string>;
  /** Annotations, as a device plugin's Allocate reply sets them (e.g. cdi.k8s.io/…). */
  annotations?: Record<string, string>;
  /** The log file, relative to the pod's log folder. */
  logPath: string;
}

/** A container's status as ContainerStatus reports it. */
export interface ContainerStatus {
  state: number;
  exitCode: number;
  reason: string;
  message: string;
}

/** PodSandboxConfig. */
export function podSandboxConfig(p: PodConfig): Uint8Array {
  const nsOptions = msg(1, uint(1, p.hostNetwork ? NamespaceMode.NODE : NamespaceMode.POD));
  return concat(
    msg(1, str(1, p.name), str(2, p.uid), str(3, p.namespace)),
    str(3, p.logDirectory),
    strMap(7, p.annotations ?? {}),
    msg(8, msg(2, nsOptions)),
  );
}

/** ContainerConfig. */
export function containerConfig(c: ContainerConfig): Uint8Array {
  return concat(
    msg(1, str(1, c.name)),
    msg(2, str(1, c.image)),
    ...c.command.map((a) => str(3, a)),
    ...Object.entries(c.env ?? {}).map(([k, v]) => msg(6, str(1, k), str(2, v))),
    strMap(10, c.annotations ?? {}),
    str(11, c.logPath),
  );
}

/** The CRI calls the tests make. */
export class CriClient {
  #grpc: GrpcClient;

  constructor(socket: string) {
    this.#grpc = new GrpcClient(socket);
  }

  /** Version: the runtime's name and version and the CRI version it speaks. */
  async version(): Promise<{ runtimeName: string; runtimeVersion: string; apiVersion: string }> {
    const r = decode(await this.#grpc.call(RUNTIME + "Version", str(1, "v1")));
    return { runtimeName: getStr(r, 2), runtimeVersion: getStr(r, 3), apiVersion: getStr(r, 4) };
  }

  /** The repo tags of every image the CRI plugin knows. */
  async listImages(): Promise<string[]> {
    const r = decode(await this.#grpc.call(IMAGE + "ListImages", new Uint8Array()));
    return (r.get(1) ?? []).flatMap((img) => getStrs(decode(img as Uint8Array), 2));
  }

  /** RunPodSandbox under `handler` ("" for the default runtime); returns the sandbox id. */
  async runPodSandbox(config: Uint8Array, handler: string): Promise<string> {
    const r = decode(
      await this.#grpc.call(RUNTIME + "RunPodSandbox", concat(msg(1, config), str(2, handler))),
    );
    return getStr(r, 1);
  }

  /** CreateContainer in a sandbox; returns the container id. */
  async createContainer(podId: string, config: Uint8Array, sandboxConfig: Uint8Array): Promise<string> {
    const r = decode(
      await this.#grpc.call(
        RUNTIME + "CreateContainer",
        concat(str(1, podId), msg(2, config), msg(3, sandboxConfig)),
      ),
    );
    return getStr(r, 1);
  }

  /** StartContainer. */
  async startContainer(id: string): Promise<void> {
    await this.#grpc.call(RUNTIME + "StartContainer", str(1, id));
  }

  /** ContainerStatus. */
  async containerStatus(id: string): Promise<ContainerStatus> {
    const r = decode(await this.#grpc.call(RUNTIME + "ContainerStatus", str(1, id)));
    const s = getMsg(r, 1);
    return { state: getInt(s, 3), exitCode: getInt(s, 7), reason: getStr(s, 10), message: getStr(s, 11) };
  }

  /** Polls ContainerStatus until the container has exited; returns its last status. */
  async waitExited(id: string, timeoutMs = 60_000): Promise<ContainerStatus> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await this.containerStatus(id);
      if (s.state === ContainerState.EXITED) return s;
      if (Date.now() > deadline) throw new Error(`Container ${id} did not exit within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** StopPodSandbox. */
  async stopPodSandbox(id: string): Promise<void> {
    await this.#grpc.call(RUNTIME + "StopPodSandbox", str(1, id));
  }

  /** RemovePodSandbox. */
  async removePodSandbox(id: string): Promise<void> {
    await this.#grpc.call(RUNTIME + "RemovePodSandbox", str(1, id));
  }

  /** Closes the connection. */
  close(): void {
    this.#grpc.close();
  }
}

/**
 * The text a container wrote, from its CRI log file: lines `TIME STREAM TAG CONTENT`, where tag F ends a
 * line and P is part of one.
 */
export function readCriLog(text: string, stream?: "stdout" | "stderr"): string {
  let out = "";
  for (const line of text.split("\n")) {
    const m = line.match(/^\S+ (stdout|stderr) ([FP])(?: (.*))?$/);
    if (!m || (stream && m[1] !== stream)) continue;
    out += (m[3] ?? "") + (m[2] === "F" ? "\n" : "");
  }
  return out;
}

// ---- images ----

/** The images a CRI test imports: a pause image and a busybox image, both from the fixture rootfs. */
export interface CriImages {
  /** An OCI image layout tarball holding both images (for `ctr -n k8s.io images import`). */
  ociTar: string;
  pause: string;
  busybox: string;
}

/**
 * Builds one OCI layout tarball with two images whose one layer is the fixture rootfs (busybox): `pause`, whose
 * command sleeps (a sandbox's container), and `busybox`, whose command is a shell.
 */
export async function criImages(
  dir: string,
  pause = "localhost/xpu-pause:1",
  busybox = "localhost/xpu-busybox:1",
): Promise<CriImages> {
  const layerTar = join(dir, "cri-rootfs.tar");
  await rootfsTarball(join(dir, "cri-rootfs"), layerTar);
  const ociTar = join(dir, "cri-images.tar");
  const images = [[pause, ["sleep", "86400"]], [busybox, ["/bin/sh"]]] as const;
  await ociArchive(layerTar, join(dir, "cri-layout"), ociTar, images);
  return { ociTar, pause, busybox };
}
