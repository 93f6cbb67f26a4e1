// The import page: upload, map columns, start the job, poll its progress, show the report.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("wg-import-data").textContent);
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var labels = {};
  var targets = {};
  data.kinds.forEach(function (k) { labels[k.kind] = k.label; targets[k.kind] = k.targets; });
  var uploadId = null;

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (a) { e.setAttribute(a, attrs[a]); });
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function say(box, kind, text) {
    box.replaceChildren(el("div", { "class": "wg-msg wg-msg-" + kind, role: kind === "error" ? "alert" : "status" }, text));
  }

  function errorText(body, status) {
    var e = body && body.error;
    return e ? e.message + (e.fix ? "（" + e.fix + "）" : "") : "请求失败（HTTP " + status + "）";
  }

  function call(url, options) {
    options.headers = Object.assign({ "X-CSRFToken": csrf }, options.headers || {});
    return fetch(url, options).then(function (r) {
      return r.json().catch(function () { return null; }).then(function (body) {
        if (!r.ok) throw new Error(errorText(body, r.status));
        return body;
      });
    });
  }

  function fieldRows(kind, info) {
    var table = el("table", { "class": "wg-fields" });
    table.appendChild(el("tr")).append(el("th", {}, "文件中的列"), el("th", {}, "标准列"));
    info.columns.forEach(function (col) {
      var tr = el("tr");
      var select = el("select", { "class": "form-select form-select-sm", "data-kind": kind, "data-source": col,
                                  "aria-label": labels[kind] + " 列 " + col + " 映射为" });
      select.appendChild(el("option", { value: "" }, info.recognised.indexOf(col) >= 0 ? "（已是标准列）" : "（不改名）"));
      targets[kind].forEach(function (t) {
        var o = el("option", { value: t }, t);
        if (info.suggested[col] === t) o.selected = true;
        select.appendChild(o);
      });
      tr.append(el("td", {}, col), el("td")); tr.lastChild.appendChild(select);
      table.appendChild(tr);
    });
    return table;
  }

  function layerCard(kind, info) {
    var card = el("div", { "class": "wg-import-layer", "data-kind": kind });
    card.appendChild(el("h3", {}, labels[kind] + "：" + info.file));
    if (info.layers.length > 1) {
      var label = el("label", {}, "文件内图层 ");
      var select = el("select", { "class": "form-select form-select-sm", name: "layer", "data-kind": kind });
      info.layers.forEach(function (name) {
        var o = el("option", { value: name }, name);
        if (name === info.layer) o.selected = true;
        select.appendChild(o);
      });
      select.addEventListener("change", function () {
        call("/api/imports/uploads/" + uploadId + "/columns?kind=" + encodeURIComponent(kind) +
             "&layer=" + encodeURIComponent(select.value), { method: "GET" })
          .then(function (fresh) { card.replaceWith(layerCard(kind, fresh)); })
          .catch(function (e) { say(document.getElementById("wg-upload-messages"), "error", e.message); });
      });
      label.appendChild(select);
      card.appendChild(label);
    }
    if (info.columns.length) card.appendChild(fieldRows(kind, info));
    else card.appendChild(el("div", { "class": "wg-muted" }, "此文件的属性按标准自动识别"));
    return card;
  }

  // XMLHttpRequest rather than fetch: it reports upload progress, which large files need.
  function send(form, box) {
    return new Promise(function (resolve, reject) {
      var xhr = new XMLHttpRequest();
      xhr.open("POST", "/api/imports/uploads");
      xhr.setRequestHeader("X-CSRFToken", csrf);
      xhr.upload.onprogress = function (e) {
        if (e.lengthComputable) say(box, "info", "正在上传… " + Math.round(100 * e.loaded / e.total) + "%");
      };
      xhr.onload = function () {
        var body = null;
        try { body = JSON.parse(xhr.responseText); } catch (err) { body = null; }
        if (xhr.status >= 200 && xhr.status < 300) resolve(body); else reject(new Error(errorText(body, xhr.status)));
      };
      xhr.onerror = function () { reject(new Error("网络错误，上传中断；请检查网络后重试")); };
      xhr.send(form);
    });
  }

  document.getElementById("wg-upload-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var box = document.getElementById("wg-upload-messages");
    var form = new FormData(ev.target);
    var bytes = 0;
    Array.from(form.keys()).forEach(function (k) {
      if (!form.get(k) || !form.get(k).name) form.delete(k); else bytes += form.get(k).size;
    });
    if (bytes > data.max_upload_mb * 1024 * 1024) {
      say(box, "error", "上传失败：所选文件共 " + (bytes / 1048576).toFixed(1) + " MB，超过 " + data.max_upload_mb +
          " MB 的上限（设置 max_upload_mb）；拆分或压缩文件，或由管理员调大设置 max_upload_mb");
      return;
    }
    say(box, "info", "正在上传…");
    send(form, box).then(function (body) {
      uploadId = body.upload_id;
      var layers = document.getElementById("wg-layers");
      layers.replaceChildren();
      Object.keys(body.files).forEach(function (kind) { layers.appendChild(layerCard(kind, body.files[kind])); });
      document.getElementById("wg-mapping").hidden = false;
      say(box, "ok", "已上传 " + Object.keys(body.files).length + " 个文件；请检查图层与列映射后开始导入");
    }).catch(function (e) { say(box, "error", "上传失败：" + e.message); });
  });

  function options(form) {
    var layers = {}, fields = {};
    document.querySelectorAll('#wg-layers select[name="layer"]').forEach(function (s) { layers[s.dataset.kind] = s.value; });
    document.querySelectorAll("#wg-layers select[data-source]").forEach(function (s) {
      if (!s.value) return;
      (fields[s.dataset.kind] = fields[s.dataset.kind] || {})[s.dataset.source] = s.value;
    });
    return { upload_id: uploadId, layers: layers, fields: fields, crs: form.crs.value,
             coords: form.coords.value, append: form.append.checked };
  }

  function showReport(issues) {
    var card = document.getElementById("wg-report");
    var body = document.querySelector("#wg-issues tbody");
    body.replaceChildren();
    issues.forEach(function (i) {
      var tr = el("tr", { "data-code": i.code });
      [i.severity, i.layer, i.feature_id, i.problem, i.fix, i.detail].forEach(function (v) { tr.appendChild(el("td", {}, v)); });
      body.appendChild(tr);
    });
    document.getElementById("wg-issue-count").textContent = issues.length;
    card.hidden = issues.length === 0;
  }

  function showSummary(s) {
    var box = document.getElementById("wg-summary");
    var list = el("ul", { "class": "wg-import-summary" });
    Object.keys(s.counts).forEach(function (k) { list.appendChild(el("li", {}, s.labels[k] + "：" + s.counts[k].toLocaleString("zh-CN"))); });
    list.appendChild(el("li", {}, "户数：" + s.households.toLocaleString("zh-CN")));
    list.appendChild(el("li", {}, "已自动修复 " + s.repaired + " 处，提示 " + s.warnings + " 条（导入批次 " + s.import_run_id + "）"));
    if (s.approximate_communities.length) list.appendChild(el("li", {}, "未提供社区边界：社区为近似生成"));
    box.replaceChildren(list, el("a", { href: "/map", "class": "btn btn-outline-primary btn-sm" }, "查看工作区地图"));
  }

  function poll(jobId, button) {
    call("/api/imports/jobs/" + jobId, { method: "GET" }).then(function (job) {
      var bar = document.getElementById("wg-progress");
      bar.style.width = Math.round(100 * job.progress) + "%";
      bar.setAttribute("aria-valuenow", Math.round(100 * job.progress));
      var msg = job.message + (job.rows_total ? "（" + job.rows_done.toLocaleString("zh-CN") + " / " + job.rows_total.toLocaleString("zh-CN") + "）" : "");
      var box = document.getElementById("wg-job-message");
      var cancel = document.getElementById("wg-cancel");
      if (job.state === "queued" || job.state === "running") {
        say(box, "info", msg);
        cancel.hidden = false;
        cancel.dataset.job = jobId;
        setTimeout(function () { poll(jobId, button); }, 500);
        return;
      }
      cancel.hidden = true;
      button.disabled = false;
      showReport(job.issues);
      say(box, job.state === "done" ? "ok" : "error", job.message);
      if (job.state === "done") { showSummary(job.summary); uploadId = null; document.getElementById("wg-start").disabled = true; }
    }).catch(function (e) { button.disabled = false; say(document.getElementById("wg-job-message"), "error", e.message); });
  }

  document.getElementById("wg-cancel").addEventListener("click", function (ev) {
    // a queued import never starts; a running one stops before it writes anything
    ev.target.disabled = true;
    call("/api/imports/jobs/" + ev.target.dataset.job + "/cancel", { method: "POST" })
      .catch(function (e) { say(document.getElementById("wg-job-message"), "error", e.message); })
      .then(function () { ev.target.disabled = false; });
  });

  document.getElementById("wg-import-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var button = document.getElementById("wg-start");
    button.disabled = true;
    document.getElementById("wg-progress-card").hidden = false;
    document.getElementById("wg-summary").replaceChildren();
    showReport([]);
    call("/api/imports", { method: "POST", headers: { "Content-Type": "application/json" },
                           body: JSON.stringify(options(ev.target)) })
      .then(function (job) { poll(job.job_id, button); })
      .catch(function (e) { button.disabled = false; say(document.getElementById("wg-job-message"), "error", e.message); });
  });
})();
