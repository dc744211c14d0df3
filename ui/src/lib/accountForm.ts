// Checks and shapes what the add/edit forms collect before it goes to the shell.
import type { FieldKey, FormField } from "../ipc";

export function nameProblem(name: string): string | null {
  if (name.length === 0) return "Give the account a name.";
  if (name.length > 64) return "The account name can be at most 64 characters.";
  if (/\s/.test(name)) return "The account name cannot contain spaces (use - or _ instead).";
  return null;
}

/** "prod, eu,prod " -> ["prod", "eu"] */
export function splitLabels(text: string): string[] {
  const out: string[] = [];
  for (const l of text.split(",")) {
    const t = l.trim();
    if (t && !out.includes(t)) out.push(t);
  }
  return out;
}

/** Only the method's own fields, trimmed, without the empty ones. */
export function cleanFields(
  fields: readonly FormField[],
  values: Record<string, string>,
): Partial<Record<FieldKey, string>> {
  const out: Partial<Record<FieldKey, string>> = {};
  for (const f of fields) {
    const v = (values[f.key] ?? "").trim();
    if (v) out[f.key] = v;
  }
  return out;
}

/** The labels of required fields left empty. */
export function missingFields(fields: readonly FormField[], values: Record<string, string>): string[] {
  return fields.filter((f) => f.required && !(values[f.key] ?? "").trim()).map((f) => f.label);
}

export function isHttps(url: string): boolean {
  return url.trim().toLowerCase().startsWith("https://");
}

export function trustProblem(caPem: string, pin: string): string | null {
  if (caPem.trim() && pin.trim()) {
    return "Give either a CA certificate or a certificate fingerprint, not both.";
  }
  return null;
}

/** Lists the missing items as a sentence: "Fill in Username and Password." */
export function fillIn(labels: readonly string[]): string | null {
  if (labels.length === 0) return null;
  const list = labels.length === 1 ? labels[0] : `${labels.slice(0, -1).join(", ")} and ${labels[labels.length - 1]}`;
  return `Fill in ${list}.`;
}
