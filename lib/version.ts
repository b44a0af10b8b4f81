/** The toolkit's version, the one `--version` of every executable prints and the install records. */
export const VERSION = "0.1.0";
