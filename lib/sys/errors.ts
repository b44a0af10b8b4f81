/** Base class for every error the toolkit reports to a user: the message is meant to be shown as is. */
export class ToolkitError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Returns the message of any thrown value, for printing. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
