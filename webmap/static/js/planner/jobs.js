/* Background jobs of the planner (partition, re-partition): the form and the progress box. */
import { ApiError, api } from "./api.js";
import { $, PAGE } from "./core.js";
import { showError } from "./messages.js";

const JOB_STATES = { queued: "排队中", running: "计算中", done: "完成", failed: "失败", cancelled: "已取消" };

/** The partition form: micro-grid defaults on toggle; returns its reader (throws ApiError when bounds are inconsistent). */
export function partitionForm(form) {
  const micro = form.elements.micro;
  micro.addEventListener("change", () => {
    const d = PAGE.defaults[micro.checked ? "micro" : "normal"];
    form.elements.min_households.value = d.min;
    form.elements.max_households.value = d.max;
    form.elements.target_households.value = d.target;
  });
  return () => {
    const e = form.elements;
    const out = {
      min_households: Number(e.min_households.value), max_households: Number(e.max_households.value),
      target_households: Number(e.target_households.value), micro: e.micro.checked, seed: Number(e.seed.value),
    };
    if (e.name) out.name = e.name.value.trim() || "自动划分方案";
    if (e.register_households) out.register_households = e.register_households.checked;
    if (!(out.min_households <= out.target_households && out.target_households <= out.max_households)) {
      throw new ApiError(400, { error: { message: "户数设置无效：应满足 最少户数 ≤ 目标户数 ≤ 最多户数" } });
    }
    return out;
  };
}

/** Poll job *jobId*, drive the progress box; resolves with the final job. */
export function watchJob(jobId, box) {
  const bar = $(".progress-bar", box), text = $(".wg-job-message", box), cancel = $("[data-cancel]", box);
  box.hidden = false;
  cancel.disabled = false;
  let cancelled = false;
  cancel.onclick = async () => {
    cancel.disabled = true;
    cancelled = true;
    try { await api("POST", `/jobs/${jobId}/cancel`, {}); } catch (err) { showError(err, "取消任务"); }
  };
  return new Promise((resolve) => {
    const poll = async () => {
      let job;
      try { job = await api("GET", `/jobs/${jobId}`); } catch (err) {
        showError(err, "查询任务进度");
        resolve({ state: "failed", message: err.message });
        return;
      }
      const pct = Math.round(100 * Math.max(0, Math.min(1, Number(job.progress) || 0)));
      bar.style.width = `${job.state === "done" ? 100 : pct}%`;
      bar.textContent = `${job.state === "done" ? 100 : pct}%`;
      box.dataset.state = job.state;
      const label = JOB_STATES[job.state] || job.state;  // the server's message may start with it ("完成：12 个网格")
      text.textContent = !job.message ? label : job.message.startsWith(label) ? job.message : `${label}：${job.message}`;
      if (["done", "failed", "cancelled"].includes(job.state)) {
        cancel.disabled = true;
        bar.classList.toggle("bg-danger", job.state !== "done");
        resolve(job);
      } else {
        setTimeout(poll, cancelled ? 300 : 500);
      }
    };
    poll();
  });
}
