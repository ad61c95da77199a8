// Amounts in Vietnamese dong, as both pages show them.

const THOUSANDS_GROUP_DIGITS = 3;

// Written out rather than Intl.NumberFormat("vi-VN"): a browser built with reduced locale data
// falls back to "en" grouping, and everyone should see the same amount on every phone.
export function formatVnd(amount) {
  const sign = amount < 0 ? "−" : "";
  const digits = String(Math.abs(Math.trunc(amount)));
  const groups = [];
  for (let end = digits.length; end > 0; end -= THOUSANDS_GROUP_DIGITS) {
    groups.unshift(digits.slice(Math.max(0, end - THOUSANDS_GROUP_DIGITS), end));
  }
  return `${sign}${groups.join(".")} ₫`;
}
