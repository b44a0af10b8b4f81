import { assertEquals } from "../../_assert.ts";
import { deviceFileAttrs, parseDriverParams } from "../../../lib/discover/driver_params.ts";

Deno.test("deviceFileAttrs reads uid, gid, decimal mode and the modify flag from a params file", () => {
  const text =
    "ResmanDebugLevel: 4294967295\nModifyDeviceFiles: 1\nDeviceFileUID: 1000\nDeviceFileGID: 44\n" +
    'DeviceFileMode: 432\nRegistryDwords: ""\nImexChannelCount: 2048\n';
  assertEquals(deviceFileAttrs(text), { uid: 1000, gid: 44, mode: 0o660, modify: true });
});

Deno.test("deviceFileAttrs: missing or unreadable values keep the driver's defaults (root, root, 0666, modify)", () => {
  assertEquals(deviceFileAttrs(""), { uid: 0, gid: 0, mode: 0o666, modify: true });
  assertEquals(
    deviceFileAttrs("DeviceFileUID: -5\nDeviceFileGID: abc\nDeviceFileMode: 99999999999\n"),
    { uid: 0, gid: 0, mode: 0o666, modify: true },
  );
});

Deno.test("deviceFileAttrs: modification is on only for exactly 1; capability files use DeviceFileModify", () => {
  assertEquals(deviceFileAttrs("ModifyDeviceFiles: 0\n").modify, false);
  assertEquals(deviceFileAttrs("ModifyDeviceFiles: 2\n").modify, false);
  assertEquals(
    deviceFileAttrs("DeviceFileMinor: 21\nDeviceFileMode: 292\nDeviceFileModify: 0\n"),
    { uid: 0, gid: 0, mode: 0o444, modify: false },
  );
});

Deno.test("deviceFileAttrs drops setuid, setgid and sticky bits from DeviceFileMode", () => {
  assertEquals(deviceFileAttrs("DeviceFileMode: 3510\n").mode, 0o666); // 06666
});

Deno.test("parseDriverParams keeps raw values, the last of a repeated name, and skips lines without a colon", () => {
  const m = parseDriverParams('RmMsg: ""\nDeviceFileUID: 1\nnoise\nDeviceFileUID: 2\n');
  assertEquals([...m.entries()], [["RmMsg", '""'], ["DeviceFileUID", "2"]]);
});
