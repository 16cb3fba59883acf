// Configuration for an entry: parsed from the environment, or a clear message and exit code 78 (EX_CONFIG).
import process from "node:process";
import { type Config, parseConfig } from "../shared/config/index.ts";
import { isEdgewiseError } from "../shared/errors/index.ts";

export function configOrExit(env: Record<string, string | undefined> = process.env): Config {
  try {
    return parseConfig(env);
  } catch (error) {
    console.error(isEdgewiseError(error) ? error.message : error);
    process.exit(78);
  }
}
