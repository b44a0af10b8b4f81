/**
 * The driver's `Name: value` files: /proc/driver/nvidia/params (the kernel module's parameters) and the
 * capability files under /proc/driver/nvidia/capabilities (`DeviceFileMinor`, `DeviceFileMode`,
 * `DeviceFileModify`). Pure: callers read the text.
 */

/** Owner, group and mode the driver gives its device files, and whether it may create or change them. */
export interface DeviceFileAttrs {
  uid: number;
  gid: number;
  /** Permission bits (0o777 at most). */
  mode: number;
  /** `ModifyDeviceFiles` (params) or `DeviceFileModify` (capability files) is 1. */
  modify: boolean;
}

/** What the driver uses when a file does not say: root, root, 0666, modification allowed. */
export const DEFAULT_DEVICE_FILE_ATTRS: Readonly<DeviceFileAttrs> = Object.freeze({
  uid: 0,
  gid: 0,
  mode: 0o666,
  modify: true,
});

/**
 * Parses `Name: value` lines into a map of the raw value text (trimmed). Lines without a colon are skipped;
 * a name given twice keeps its last value, as the driver's own reader does.
 */
export function parseDriverParams(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    const i = line.indexOf(":");
    if (i <= 0) continue;
    out.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  return out;
}

function unsigned(v: string | undefined): number | undefined {
  if (v === undefined || !/^\d{1,10}$/.test(v)) return undefined;
  const n = Number(v);
  return n <= 0xffffffff ? n : undefined;
}

/**
 * The device-file settings in a params or capability file's text. Values are decimal (`DeviceFileMode: 432`
 * is 0660); anything missing or not an unsigned number keeps the driver's default. Modification is allowed
 * only when the flag is exactly 1, as the driver's own node helper reads it. Mode bits above 0o777 (setuid,
 * sticky) are dropped: a device node never needs them.
 */
export function deviceFileAttrs(text: string): DeviceFileAttrs {
  const p = parseDriverParams(text);
  const modify = unsigned(p.get("ModifyDeviceFiles") ?? p.get("DeviceFileModify"));
  return {
    uid: unsigned(p.get("DeviceFileUID")) ?? DEFAULT_DEVICE_FILE_ATTRS.uid,
    gid: unsigned(p.get("DeviceFileGID")) ?? DEFAULT_DEVICE_FILE_ATTRS.gid,
    mode: (unsigned(p.get("DeviceFileMode")) ?? DEFAULT_DEVICE_FILE_ATTRS.mode) & 0o777,
    modify: modify === undefined ? DEFAULT_DEVICE_FILE_ATTRS.modify : modify === 1,
  };
}
