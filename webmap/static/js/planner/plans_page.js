/* The plan list page (/plans): the list, comparing two versions, starting an automatic partition. */
import { api } from "./api.js";
import { $, $$, PAGE, STATUS_LABELS, esc, fmtTime } from "./core.js";
import { partitionForm, watchJob } from "./jobs.js";
import { message, showError } from "./messages.js";

/** Fill the list; wire the compare button and the partition panel. */
async function initPlansPage() {
  const tbody = $("#wg-plan-list tbody");
  const compare = $("#wg-compare");
  const load = async () => {
    let plans;
    try { plans = await api("GET", "/plans"); } catch (err) {
      tbody.innerHTML = `<tr><td colspan="8" class="wg-muted">无法加载方案列表</td></tr>`;
      showError(err, "加载方案列表");
      return;
    }
    if (!plans.length) {
      tbody.innerHTML = `<tr><td colspan="8" class="wg-muted">还没有方案。${PAGE.canEdit ? "点击“自动划分”生成第一个方案。" : ""}</td></tr>`;
      return;
    }
    tbody.innerHTML = plans.map((p) => `<tr data-plan="${p.id}">
      <td data-label="对比"><input type="checkbox" class="form-check-input" value="${p.id}" aria-label="选择 #${p.id} 对比"></td>
      <td data-label="编号">#${p.id}</td><td data-label="名称"><a href="${PAGE.pages}/${p.id}">${esc(p.name)}</a></td>
      <td data-label="状态"><span class="wg-badge wg-badge-${esc(p.status)}">${esc(STATUS_LABELS[p.status] || p.status)}</span>
        ${p.is_active ? '<span class="wg-badge wg-badge-active">生效中</span>' : ""}</td>
      <td data-label="作者">${esc(p.author)}</td><td data-label="创建时间">${esc(fmtTime(p.created_at))}</td>
      <td data-label="说明">${esc(p.message || "")}</td><td data-label="修订">${esc(p.version)}</td></tr>`).join("");
  };
  tbody.addEventListener("change", () => {
    compare.disabled = $$("input:checked", tbody).length !== 2;
  });
  compare.addEventListener("click", () => {
    const ids = $$("input:checked", tbody).map((i) => Number(i.value)).sort((a, b) => a - b);
    if (ids.length === 2) window.location.href = `${PAGE.pages}/${ids[0]}/diff/${ids[1]}`;
  });
  const panel = $("#wg-partition-panel");
  if (panel) {
    const form = $("#wg-partition-form");
    const read = partitionForm(form);
    $("#wg-open-partition").addEventListener("click", () => { panel.hidden = false; });
    $("[data-close]", panel).addEventListener("click", () => { panel.hidden = true; });
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const submit = $('button[type="submit"]', form);
      submit.disabled = true;
      try {
        const { job_id: jobId } = await api("POST", "/plans/partition", read());
        const job = await watchJob(jobId, $("#wg-job"));
        if (job.state === "done" && job.plan_id) {
          message(`划分完成：方案 #${job.plan_id}，正在打开…`, "ok");
          await load();
          setTimeout(() => { window.location.href = `${PAGE.pages}/${job.plan_id}`; }, 400);
        } else if (job.state === "failed") {
          message(`自动划分失败：${job.message || "未知原因"}`, "error");
        } else if (job.state === "cancelled") {
          message("自动划分已取消", "warn");
        }
      } catch (err) { showError(err, "自动划分"); } finally { submit.disabled = false; }
    });
  }
  await load();
}
initPlansPage();
