// A once-a-second countdown to zero: how long until the shell clears a copied token.

/**
 * Shows `seconds` (rounded, at least 0) at once, then one less every second down to 0.
 * Answers a function that stops it where it is.
 */
export function countdown(seconds: number, show: (left: number) => void): () => void {
  let left = Math.max(0, Math.round(seconds));
  show(left);
  if (left === 0) return () => {};
  const timer = setInterval(() => {
    left -= 1;
    show(left);
    if (left === 0) clearInterval(timer);
  }, 1000);
  return () => clearInterval(timer);
}
