// audio-evals report.html: the cases tables (filter, sort, page), built from the embedded JSON.
// Every value is put in the page with textContent, never as HTML.
"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("report-data").textContent);
  // each clip: [path shown, source]; a null source is the link prefix + the path shown
  const AUDIO = DATA.audio.map(([shown, src]) => [
    src === null ? DATA.audioPrefix + shown.split("/").map(encodeURIComponent).join("/") : src,
    shown,
  ]);
  const PAGE = 50;
  const OUTCOME = { m: "match", x: "mismatch", i: "missed", s: "spurious", e: "both_empty" };

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function option(select, value, label) {
    select.appendChild(el("option", { value: value }, label));
  }

  function setupSuite(root, suite) {
    const runs = suite.runs.map((r, index) => ({
      index: index,
      c: suite.cases[r[0]],
      v: r[1],
      repeat: r[2],
      error: r[3],
      message: r[4],
      pred: r[5].map((p, i) => (p === null ? suite.cases[r[0]][4][i] : p)),
      outcomes: r[6],
      correct: r[7],
      transcript: r[8],
      latency: r[9],
      wrong: [...r[7]].filter((b) => b === "0").length,
    }));
    for (const run of runs) {
      const c = run.c;
      run.text = [c[0], ...c[4], ...run.pred, run.transcript || "", c[5] || "", run.message || ""]
        .join("\u0001")
        .toLowerCase();
    }
    const ui = el("div", { class: "cases-ui" });
    const controls = {};
    function addSelect(name, label, options) {
      const wrap = el("label", {}, label + " ");
      const select = el("select", { "data-filter": name });
      option(select, "", "all");
      for (const [value, text] of options) option(select, value, text);
      wrap.appendChild(select);
      ui.appendChild(wrap);
      controls[name] = select;
      select.addEventListener("change", () => { state.page = 0; render(); });
    }
    addSelect("variant", "variant", suite.variants.map((v, i) => [String(i), v]));
    addSelect("field", "field", suite.fields.map((f, i) => [String(i), f]));
    addSelect("outcome", "outcome", [
      ["correct", "correct (exact record, or the field)"],
      ["wrong", "wrong (any field, or the field)"],
      ["error", "extraction error"],
      ["match", "match"], ["mismatch", "mismatch"], ["missed", "missed"],
      ["spurious", "spurious"], ["both_empty", "both empty"],
    ]);
    const tagOptions = [];
    suite.tagKeys.forEach((key, k) => {
      const values = [...new Set(suite.cases.map((c) => c[3][k]))].sort();
      for (const value of values) {
        tagOptions.push([k + "\u0001" + value, key + " = " + (value === "" ? "(none)" : value)]);
      }
    });
    addSelect("tag", "tag", tagOptions);
    const searchWrap = el("label", {}, "search ");
    const search = el("input", { type: "search", "data-filter": "search", placeholder: "id, value, transcript" });
    searchWrap.appendChild(search);
    ui.appendChild(searchWrap);
    search.addEventListener("input", () => { state.page = 0; render(); });
    const count = el("span", { class: "note count" });
    ui.appendChild(count);
    root.appendChild(ui);

    const table = el("table", { class: "cases" });
    const head = el("tr");
    const columns = [
      ["case", "case"], ["variant", "variant"], ["result", "wrong"], ["fields: expected / predicted", null],
      ["transcript", null], ["audio", "duration"], ["latency", "latency"],
    ];
    const state = { page: 0, sort: null, dir: 1 };
    for (const [label, key] of columns) {
      const th = el("th", key ? { "data-sort": key } : {}, label);
      if (key) th.addEventListener("click", () => {
        state.dir = state.sort === key ? -state.dir : 1;
        state.sort = key;
        for (const other of head.children) other.classList.remove("asc", "desc");
        th.classList.add(state.dir > 0 ? "asc" : "desc");
        render();
      });
      head.appendChild(th);
    }
    const thead = el("thead");
    thead.appendChild(head);
    table.appendChild(thead);
    const tbody = el("tbody");
    table.appendChild(tbody);
    root.appendChild(table);
    const pager = el("div", { class: "pager" });
    const prev = el("button", { type: "button", "data-page": "prev" }, "previous");
    const next = el("button", { type: "button", "data-page": "next" }, "next");
    pager.append(prev, next);
    root.appendChild(pager);
    prev.addEventListener("click", () => { state.page = Math.max(0, state.page - 1); render(); });
    next.addEventListener("click", () => { state.page += 1; render(); });

    function keep(run) {
      const f = controls.field.value === "" ? -1 : Number(controls.field.value);
      if (controls.variant.value !== "" && run.v !== Number(controls.variant.value)) return false;
      if (controls.tag.value !== "") {
        const [k, value] = controls.tag.value.split("\u0001");
        if (run.c[3][Number(k)] !== value) return false;
      }
      const want = controls.outcome.value;
      if (want === "error" && !run.error) return false;
      if (want === "correct") {
        if (f >= 0 ? run.correct[f] !== "1" : run.wrong !== 0 || run.error) return false;
      } else if (want === "wrong") {
        if (f >= 0 ? run.correct[f] !== "0" : run.wrong === 0 && !run.error) return false;
      } else if (want && want !== "error") {
        const codes = f >= 0 ? [run.outcomes[f]] : [...run.outcomes];
        if (!codes.some((code) => OUTCOME[code] === want)) return false;
      }
      const q = search.value.trim().toLowerCase();
      if (q && !run.text.includes(q)) return false;
      return true;
    }

    function sortKey(run) {
      switch (state.sort) {
        case "case": return run.c[0] + "\u0001" + String(run.repeat).padStart(4, "0");
        case "variant": return suite.variants[run.v];
        case "wrong": return run.wrong;
        case "duration": return run.c[2] === null ? -1 : run.c[2];
        case "latency": return run.latency;
        default: return run.index;
      }
    }

    function row(run) {
      const tr = el("tr", { class: "case-row" });
      const c = run.c;
      const caseCell = el("td");
      caseCell.appendChild(el("div", { class: "case-id" }, c[0] + (run.repeat ? " r" + (run.repeat + 1) : "")));
      suite.tagKeys.forEach((key, k) => {
        if (c[3][k] !== "") caseCell.appendChild(el("span", { class: "chip", title: key }, key + ": " + c[3][k]));
      });
      tr.appendChild(caseCell);
      tr.appendChild(el("td", {}, suite.variants[run.v]));
      const res = el("td");
      if (run.error) {
        res.appendChild(el("span", { class: "res-error", title: run.message }, "error: " + run.error));
        res.appendChild(el("div", { class: "note" }, run.message));
      } else if (run.wrong === 0) {
        res.appendChild(el("span", { class: "res-exact" }, "exact"));
      } else {
        res.appendChild(el("span", { class: "res-wrong" }, run.wrong + " wrong"));
      }
      tr.appendChild(res);
      const fieldsCell = el("td");
      const vals = el("table", { class: "fieldvals" });
      const selected = controls.field.value === "" ? -1 : Number(controls.field.value);
      suite.fields.forEach((name, i) => {
        const classes = [run.correct[i] === "0" ? "bad" : "ok"];
        if (i === selected) classes.push("sel");
        const line = el("tr", { class: classes.join(" "), title: OUTCOME[run.outcomes[i]] });
        line.appendChild(el("td", { class: "fname" }, name));
        line.appendChild(el("td", { class: "exp" }, c[4][i] === "" ? "\u2205" : c[4][i]));
        line.appendChild(el("td", { class: "pred" }, run.pred[i] === "" ? "\u2205" : run.pred[i]));
        vals.appendChild(line);
      });
      fieldsCell.appendChild(vals);
      tr.appendChild(fieldsCell);
      const said = el("td", { class: "transcript" });
      if (run.transcript) said.appendChild(el("div", { class: "heard" }, "heard: " + run.transcript));
      if (c[5]) said.appendChild(el("div", { class: "said" }, "said: " + c[5]));
      tr.appendChild(said);
      const audioCell = el("td");
      const clip = AUDIO[c[1]];
      audioCell.appendChild(el("div", { class: "note" }, (c[2] === null ? "?" : c[2].toFixed(1) + " s") + " \u00b7 " + clip[1]));
      if (clip[0]) {
        audioCell.appendChild(el("audio", { class: "clip", controls: "", preload: "none", src: clip[0] }));
      } else {
        audioCell.appendChild(el("span", { class: "warn" }, "audio file not found"));
      }
      tr.appendChild(audioCell);
      tr.appendChild(el("td", { class: "num" }, Math.round(run.latency) + " ms"));
      return tr;
    }

    function render() {
      const shown = runs.filter(keep);
      if (state.sort) {
        shown.sort((a, b) => {
          const ka = sortKey(a), kb = sortKey(b);
          return (ka < kb ? -1 : ka > kb ? 1 : a.index - b.index) * state.dir;
        });
      }
      const pages = Math.max(1, Math.ceil(shown.length / PAGE));
      state.page = Math.min(state.page, pages - 1);
      const start = state.page * PAGE;
      const rows = shown.slice(start, start + PAGE).map(row);
      tbody.replaceChildren(...rows);
      count.textContent = shown.length
        ? `rows ${start + 1}\u2013${start + rows.length} of ${shown.length} (of ${runs.length})`
        : `no row matches (of ${runs.length})`;
      prev.disabled = state.page === 0;
      next.disabled = state.page >= pages - 1;
    }
    render();
  }

  for (const root of document.querySelectorAll("div.cases-root")) {
    const suite = DATA.suites.find((s) => s.name === root.dataset.suite);
    if (suite) setupSuite(root, suite);
  }
})();
