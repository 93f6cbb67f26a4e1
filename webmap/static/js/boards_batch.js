/* Batch printing of notice boards: start the job, show its progress, offer the downloads.
 * Talks to POST /api/boards/batch and GET /api/boards/batch/<id>; every value shown is text.
 */
(function () {
  "use strict";

  const CSRF = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  const STATES = { queued: "排队中", running: "打印中", done: "完成", failed: "失败", cancelled: "已取消" };
  const form = document.getElementById("wg-batch-form");
  const box = document.getElementById("wg-batch-job");
  const bar = box.querySelector(".progress-bar");
  const text = box.querySelector(".wg-job-message");
  const cancel = box.querySelector("[data-cancel]");
  const downloads = box.querySelector(".wg-batch-downloads");
  const refused = box.querySelector(".wg-batch-refused");
  const error = document.getElementById("wg-batch-error");

  async function call(method, url, body) {
    const opts = { method, headers: { Accept: "application/json", "X-CSRFToken": CSRF }, credentials: "same-origin" };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    const r = await fetch(url, opts);
    const data = await r.json().catch(() => ({}));
    if (!r.ok) {
      const e = (data && data.error) || {};
      throw new Error([e.message || `请求失败（HTTP ${r.status}）`, e.fix].filter(Boolean).join("；"));
    }
    return data;
  }

  function scopeChanged() {
    const scope = form.elements.scope.value;
    form.elements.street.disabled = scope !== "street";
    form.elements.community.disabled = scope !== "community";
  }

  function showRefused(result) {
    refused.replaceChildren();
    const rows = Object.entries((result && result.refused) || {});
    if (!rows.length) return;
    const title = document.createElement("p");
    title.textContent = `${rows.length} 个网格缺少必填内容，未打印：`;
    const list = document.createElement("ul");
    for (const [key, missing] of rows) {
      const li = document.createElement("li");
      li.textContent = `${key}：${missing.join("；")}`;
      list.append(li);
    }
    refused.append(title, list);
  }

  function showDownloads(links) {
    downloads.replaceChildren();
    const labels = { "boards.zip": "下载 ZIP（全部文件）", "boards-all.pdf": "下载合并 PDF" };
    for (const [name, href] of Object.entries(links || {})) {
      const a = document.createElement("a");
      a.href = href;
      a.textContent = labels[name] || name;
      a.className = "btn btn-success btn-sm me-2";
      a.dataset.file = name;
      downloads.append(a);
    }
  }

  function watch(statusUrl) {
    const poll = async () => {
      let job;
      try { job = await call("GET", statusUrl); } catch (e) { error.textContent = e.message; return; }
      const pct = job.state === "done" ? 100 : Math.round(100 * Math.max(0, Math.min(1, Number(job.progress) || 0)));
      bar.style.width = `${pct}%`;
      bar.textContent = `${pct}%`;
      box.dataset.state = job.state;
      text.textContent = job.message || STATES[job.state] || job.state;
      if (["done", "failed", "cancelled"].includes(job.state)) {
        cancel.disabled = true;
        form.querySelector('button[type="submit"]').disabled = false;
        bar.classList.toggle("bg-danger", job.state !== "done");
        showDownloads(job.downloads);
        showRefused(job.result);
      } else {
        setTimeout(poll, 500);
      }
    };
    poll();
  }

  // Opened from the board list's "打印所选" (?job=ID): show that job's progress.
  const started = new URLSearchParams(window.location.search).get("job");
  if (started) {
    box.hidden = false;
    const statusUrl = `${form.dataset.start}/${encodeURIComponent(started)}`;
    cancel.onclick = async () => {
      cancel.disabled = true;
      try { await call("POST", `${statusUrl}/cancel`, {}); } catch (err) { error.textContent = err.message; }
    };
    watch(statusUrl);
  }

  form.addEventListener("change", scopeChanged);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    const e = form.elements, scope = e.scope.value;
    const body = { scope, size: e.size.value, orientation: e.orientation.value, format: e.format.value,
                   drafts: e.drafts.checked };
    if (scope === "street") body.target = e.street.value;
    if (scope === "community") body.target = e.community.value;
    const submit = form.querySelector('button[type="submit"]');
    submit.disabled = true;
    try {
      const started = await call("POST", form.dataset.start, body);
      box.hidden = false;
      cancel.disabled = false;
      downloads.replaceChildren();
      refused.replaceChildren();
      cancel.onclick = async () => {
        cancel.disabled = true;
        try { await call("POST", `${started.status_url}/cancel`, {}); } catch (err) { error.textContent = err.message; }
      };
      watch(started.status_url);
    } catch (err) {
      error.textContent = err.message;
      submit.disabled = false;
    }
  });
  scopeChanged();
}());
