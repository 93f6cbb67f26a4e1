/* Messages, the conflict dialog and confirmations of the planner pages. */
import { $, $$, esc } from "./core.js";

/** A dismissable message above the map (the newest six are kept); *opts.html* when *text* is markup. */
export function message(text, kind, opts) {
  const box = $("#wg-messages");
  if (!box) return null;
  const div = document.createElement("div");
  div.className = `wg-msg wg-msg-${kind || "info"}`;
  div.innerHTML = `<span class="wg-msg-text"></span><button type="button" class="wg-msg-close" aria-label="关闭">×</button>`;
  $(".wg-msg-text", div).innerHTML = (opts && opts.html) ? text : esc(text);
  $(".wg-msg-close", div).addEventListener("click", () => div.remove());
  box.prepend(div);
  while (box.children.length > 6) box.lastChild.remove();
  return div;
}

function showConflict(err) {
  $$(".wg-conflict").forEach((el) => el.remove());
  const div = document.createElement("div");
  div.className = "wg-conflict";
  div.setAttribute("role", "alertdialog");
  div.innerHTML = `<h3>编辑冲突：方案已被他人修改</h3><p>${esc(err.message)}</p>
    <p class="wg-muted">您的这次修改没有保存。请重新加载页面，查看最新方案后再编辑。</p>
    <button type="button" class="btn btn-danger btn-sm" data-reload>重新加载</button>
    <button type="button" class="btn btn-outline-secondary btn-sm" data-dismiss>关闭</button>`;
  $("[data-reload]", div).addEventListener("click", () => window.location.reload());
  $("[data-dismiss]", div).addEventListener("click", () => div.remove());
  document.body.appendChild(div);
}

/** A modal question with the details of what will happen; resolves true on *ok*. */
export function confirmDialog(title, bodyHtml, ok) {
  $$(".wg-confirm").forEach((el) => el.remove());
  const div = document.createElement("div");
  div.className = "wg-confirm";
  div.setAttribute("role", "alertdialog");
  div.innerHTML = `<h3></h3><div class="wg-confirm-body">${bodyHtml}</div>
    <button type="button" class="btn btn-primary btn-sm" data-ok></button>
    <button type="button" class="btn btn-outline-secondary btn-sm" data-cancel>取消</button>`;
  $("h3", div).textContent = title;
  $("[data-ok]", div).textContent = ok;
  document.body.appendChild(div);
  return new Promise((resolve) => {
    $("[data-ok]", div).addEventListener("click", () => { div.remove(); resolve(true); });
    $("[data-cancel]", div).addEventListener("click", () => { div.remove(); resolve(false); });
  });
}

/** A refused request: the version-conflict dialog only for a real conflict, else the server's reason and fix. */
export function showError(err, what) {
  if (err.status === 409 && err.code === "conflict") return showConflict(err);
  const prefix = what ? `${what}失败：` : "";
  const fix = err.fix && err.fix !== "reload" ? `（处理办法：${err.fix}）` : "";
  message(`${prefix}${err.message}${fix}`, "error");
  return null;
}
