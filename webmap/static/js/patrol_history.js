// 走访记录: the visit history of a grid (or of the worker's own grids) as a table, shared by /patrol and /patrol/my.
// Every value goes in with textContent: notes are typed by workers and never run as markup.
(function () {
  "use strict";

  function cell(tr, value) {
    var td = document.createElement("td");
    td.textContent = value;
    tr.appendChild(td);
    return td;
  }

  function photoCell(tr, url) {
    var td = cell(tr, url ? "" : "—");
    if (url) {
      var a = document.createElement("a");
      a.href = url;
      a.target = "_blank";
      a.rel = "noopener";
      var img = document.createElement("img");
      img.src = url;
      img.alt = "走访照片";
      img.loading = "lazy";
      img.className = "wg-visit-thumb";
      a.appendChild(img);
      td.appendChild(a);
    }
  }

  function row(v) {
    var tr = document.createElement("tr");
    cell(tr, v.at_local);
    cell(tr, v.worker_name || v.worker);
    cell(tr, v.name + (v.category ? "（" + v.category + "）" : ""));
    cell(tr, v.note || "—");
    cell(tr, v.distance_m === null || v.distance_m === undefined ? "未签到" : Math.round(v.distance_m) + " 米");
    photoCell(tr, v.photo_url);
    return tr;
  }

  /** Fill the tbody *tbody* with the visits at *url*; resolves to the number of rows, rejects with the API message. */
  window.wgVisitHistory = function (url, tbody) {
    return fetch(url, { credentials: "same-origin" }).then(function (r) {
      return r.json().then(function (b) { if (!r.ok) { throw new Error(b.error ? b.error.message : r.status); } return b; });
    }).then(function (body) {
      tbody.textContent = "";
      body.rows.forEach(function (v) { tbody.appendChild(row(v)); });
      if (!body.rows.length) {
        var tr = document.createElement("tr");
        cell(tr, "暂无走访记录").colSpan = 6;
        tbody.appendChild(tr);
      }
      return body.rows.length;
    });
  };
}());
