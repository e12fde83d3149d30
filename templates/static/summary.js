(function () {
  var f = {w: document.getElementById("f-writer"), r: document.getElementById("f-reader"), fmt: document.getElementById("f-format"),
           st: document.getElementById("f-status"), q: document.getElementById("f-search")};
  function lib(name) { return name.split(" ")[0]; }
  function apply() {
    var q = f.q.value.trim().toLowerCase();
    document.querySelectorAll("table.summary tbody tr").forEach(function (tr) {
      var w = tr.dataset.writer;
      tr.hidden = (f.w.value && lib(w) !== f.w.value) || false;
      tr.querySelectorAll("td").forEach(function (td) {
        var r = td.dataset.reader, show = true;
        if (f.r.value && lib(r) !== f.r.value) show = false;
        if (q && (w + " " + r).toLowerCase().indexOf(q) < 0) show = false;
        if (f.fmt.value && (" " + (td.dataset.formats || "") + " ").indexOf(" " + f.fmt.value + " ") < 0) show = false;
        var st = (td.dataset.statuses || "").split(" ");
        if (f.st.value === "notpass" && !st.some(function (s) { return s && s !== "pass"; })) show = false;
        if (f.st.value && f.st.value !== "notpass" && st.indexOf(f.st.value) < 0) show = false;
        td.style.visibility = show ? "" : "hidden";
      });
    });
    document.querySelectorAll("table.summary thead th.r").forEach(function (th) {
      th.style.visibility = (f.r.value && lib(th.dataset.reader) !== f.r.value) ? "hidden" : "";
    });
  }
  [f.w, f.r, f.fmt, f.st].forEach(function (el) { el.addEventListener("change", apply); });
  f.q.addEventListener("input", apply);
})();
