/* The board list's selection (admins): grids ticked on any page, kept for this browser tab while
 * paging and filtering, printed as one batch job; the batch page then shows its progress.
 * Talks to POST /api/boards/batch ({scope: "grids", grids: [...]}); every value shown is text.
 */
(function () {
  "use strict";

  const KEY = "wg-boards-selection";
  const CSRF = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  const form = document.getElementById("wg-board-selection");
  if (!form) return;
  const picks = [...document.querySelectorAll(".wg-board-pick")];
  const pageAll = document.getElementById("wg-board-page-all");
  const count = form.querySelector(".wg-board-count");
  const submit = form.querySelector('button[type="submit"]');
  const error = form.querySelector(".wg-board-error");
  const hits = JSON.parse(form.dataset.hits || "[]");

  function load() {
    try { return new Set(JSON.parse(sessionStorage.getItem(KEY) || "[]")); } catch (e) { return new Set(); }
  }
  const chosen = load();

  function save() {
    sessionStorage.setItem(KEY, JSON.stringify([...chosen]));
    count.textContent = `已选 ${chosen.size} 个网格`;
    submit.disabled = chosen.size === 0;
    for (const box of picks) box.checked = chosen.has(box.value);
    if (pageAll) pageAll.checked = picks.length > 0 && picks.every((b) => chosen.has(b.value));
  }

  for (const box of picks) {
    box.addEventListener("change", () => {
      if (box.checked) chosen.add(box.value); else chosen.delete(box.value);
      save();
    });
  }
  if (pageAll) {
    pageAll.addEventListener("change", () => {
      for (const box of picks) { if (pageAll.checked) chosen.add(box.value); else chosen.delete(box.value); }
      save();
    });
  }
  form.querySelector("[data-select-hits]").addEventListener("click", () => {
    for (const key of hits) chosen.add(key);
    save();
  });
  form.querySelector("[data-clear]").addEventListener("click", () => {
    chosen.clear();
    save();
  });

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    submit.disabled = true;
    const e = form.elements;
    const body = { scope: "grids", grids: [...chosen], size: e.size.value, orientation: e.orientation.value,
                   format: e.format.value, drafts: e.drafts.checked };
    try {
      const r = await fetch(form.dataset.start, {
        method: "POST", credentials: "same-origin", body: JSON.stringify(body),
        headers: { Accept: "application/json", "Content-Type": "application/json", "X-CSRFToken": CSRF },
      });
      const data = await r.json().catch(() => ({}));
      if (!r.ok) {
        const err = (data && data.error) || {};
        throw new Error([err.message || `请求失败（HTTP ${r.status}）`, err.fix].filter(Boolean).join("；"));
      }
      chosen.clear();
      save();
      window.location.assign(`${form.dataset.watch}?job=${encodeURIComponent(data.job_id)}`);
    } catch (err) {
      error.textContent = err.message;
      submit.disabled = chosen.size === 0;
    }
  });
  save();
}());
