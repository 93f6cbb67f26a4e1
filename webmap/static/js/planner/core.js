/* What every planner page shares: the page data, the map frame's config, DOM and text helpers.
 *
 * The page data (role, API base, form defaults) is in <script id="wg-page-data">; the map
 * frame (webmap/planner.py) sets window.wanggePlannerConfig before the modules run.
 */
export const PAGE = JSON.parse(document.getElementById("wg-page-data").textContent);
export const CFG = window.wanggePlannerConfig || { gcj02: false };
export const STATUS_LABELS = { draft: "草稿", published: "已发布", archived: "已归档", auto: "自动结果（只读）" };

export const $ = (sel, root) => (root || document).querySelector(sel);
export const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
export const esc = (v) => String(v === null || v === undefined ? "" : v).replace(/[&<>"']/g,
  (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const INT_FORMAT = new Intl.NumberFormat("zh-CN");  // toLocaleString() builds a formatter per call: 2 per table row
export const fmtInt = (v) => (v === null || v === undefined || v === "" ? "–" : INT_FORMAT.format(Number(v)));
/** Times are shown in the app's display_timezone (base.html's meta), not the browser's. */
const TIME_ZONE = document.querySelector('meta[name="wangge-timezone"]')?.content || undefined;
export const fmtTime = (iso) => {
  if (!iso) return "";
  const d = new Date(iso);
  return isNaN(d) ? String(iso) : d.toLocaleString("zh-CN", { hour12: false, timeZone: TIME_ZONE });
};

/** The page is drawn: tests and the bench wait for these. */
export function markReady() {
  requestAnimationFrame(() => { window.wanggePlannerReady = performance.now(); document.body.dataset.ready = "1"; });
}
