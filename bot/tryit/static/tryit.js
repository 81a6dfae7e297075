// The try-it page: polls /fragments and turns clicks into the bot's Slack requests.
"use strict";
(function () {
  const body = document.body;
  const state = {
    user: body.dataset.user, channel: body.dataset.channel, tab: "channel", thread: "",
    modalKey: "", last: {},
  };
  const $ = (sel) => document.querySelector(sel);
  let timer = null;

  function toast(text) {
    const el = $("#toast");
    el.textContent = text;
    el.hidden = !text;
  }

  async function post(path, data) {
    const res = await fetch(path, {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(data),
    });
    const answer = await res.json().catch(() => ({error: "HTTP " + res.status}));
    if (!res.ok) { toast(answer.error || ("HTTP " + res.status)); throw new Error(answer.error); }
    toast("");
    return answer;
  }

  function swap(id, html) {
    if (state.last[id] === html) return false;
    state.last[id] = html;
    $(id).innerHTML = html;
    return true;
  }

  // -- the modal --------------------------------------------------------------------------
  function readInput(box) {
    const type = box.dataset.type;
    if (type === "external_select") {
      const hidden = box.querySelector(".ext-value");
      return hidden.value ? {text: hidden.dataset.text || hidden.value, value: hidden.value} : null;
    }
    if (type === "radio_buttons") {
      const checked = box.querySelector("input:checked");
      return checked ? checked.value : null;
    }
    if (type === "checkboxes") {
      return Array.from(box.querySelectorAll("input:checked")).map((i) => i.value);
    }
    const field = box.querySelector("select, input, textarea");
    return field && field.value !== "" ? field.value : null;
  }

  function formValues(modal) {
    const values = {};
    modal.querySelectorAll(".bk-input").forEach((box) => {
      values[box.dataset.blockId] = {[box.dataset.actionId]: readInput(box)};
    });
    return values;
  }

  function writeInput(box, value) {
    const type = box.dataset.type;
    if (type === "external_select") return;  // the bot sets the chosen target itself
    if (type === "radio_buttons" || type === "checkboxes") {
      const chosen = Array.isArray(value) ? value : [value];
      box.querySelectorAll("input").forEach((i) => { i.checked = chosen.includes(i.value); });
      return;
    }
    if (box.dataset.dispatch) return;  // the bot re-renders from this one
    const field = box.querySelector("select, input, textarea");
    if (field && value !== null && value !== undefined) field.value = value;
  }

  function renderModal(modal) {
    const overlay = $("#overlay");
    if (modal.key === state.modalKey) return;
    const old = overlay.querySelector(".modal");
    const sameView = old && modal.key && old.dataset.viewId === modal.key.split(":")[0];
    const kept = sameView ? formValues(old) : null;
    state.modalKey = modal.key;
    overlay.innerHTML = modal.html;
    overlay.hidden = !modal.html;
    if (kept) {
      overlay.querySelectorAll(".bk-input").forEach((box) => {
        const prev = kept[box.dataset.blockId];
        if (prev && box.dataset.actionId in prev) writeInput(box, prev[box.dataset.actionId]);
      });
    }
  }

  // -- polling ----------------------------------------------------------------------------
  function query() {
    const q = new URLSearchParams({user: state.user, channel: state.channel, tab: state.tab});
    if (state.thread) q.set("thread", state.thread);
    return q.toString();
  }

  async function refresh() {
    clearTimeout(timer);
    try {
      const res = await fetch("/fragments?" + query());
      const data = await res.json();
      if (!res.ok) { toast(data.error || "HTTP " + res.status); return; }
      const main = $("#main");
      const atBottom = main.scrollHeight - main.scrollTop - main.clientHeight < 40;
      if (swap("#main", data.main) && atBottom) main.scrollTop = main.scrollHeight;
      $("#thread").hidden = !data.thread;
      if (swap("#thread", data.thread)) $("#thread").scrollTop = $("#thread").scrollHeight;
      swap("#providers", data.providers);
      renderModal(data.modal);
      $("#clock-now").textContent = data.clock.now;
      $("#clock-ahead").textContent = data.clock.ahead;
    } catch (err) {
      toast("The page lost the try-it server: " + err);
    } finally {
      timer = setTimeout(refresh, 1000);
    }
  }

  function setTitle() {
    const link = document.querySelector('.channel-link[data-channel="' + state.channel + '"]');
    $("#title").textContent = state.tab === "home" ? "automation-bot · Home" : link.textContent;
    document.querySelectorAll(".nav").forEach((n) => n.classList.remove("active"));
    (state.tab === "home" ? $(".home-link") : link).classList.add("active");
    $("#composer").hidden = state.tab === "home";
    history.replaceState(null, "", "/?" + new URLSearchParams({user: state.user, channel: state.channel}));
  }

  async function openHome() {
    state.tab = "home";
    setTitle();
    await post("/api/home", {user: state.user});
    refresh();
  }

  // -- clicks -----------------------------------------------------------------------------
  function where(el) {
    const box = el.closest("[data-container]");
    if (!box) return {};
    if (box.dataset.container === "view") {
      const modal = box.classList.contains("modal") ? box : null;
      return {view_id: box.dataset.viewId, values: modal ? formValues(modal) : undefined};
    }
    return {channel: box.dataset.channel, ts: box.dataset.ts || "", ephemeral: box.dataset.ephemeral || ""};
  }

  async function act(data) {
    try { await post("/api/action", Object.assign({user: state.user}, data)); } catch (e) { /* shown */ }
    refresh();
  }

  // Links to a message of the sandbox workspace open it here (channel and thread).
  const PERMALINK = /slack\.com\/archives\/([A-Z0-9]+)\/p(\d{10})(\d{6})/;
  document.addEventListener("click", (ev) => {
    const link = ev.target.closest("a[href]");
    const found = link && link.href.match(PERMALINK);
    if (!found || !document.querySelector('.channel-link[data-channel="' + found[1] + '"]')) return;
    ev.preventDefault();
    state.channel = found[1]; state.tab = "channel"; state.thread = found[2] + "." + found[3];
    setTitle(); refresh();
  });

  document.addEventListener("click", async (ev) => {
    const el = ev.target.closest("button, .ext-option");
    if (!el) return;
    if (el.classList.contains("bk-button")) {
      if (el.dataset.url) { window.open(el.dataset.url, "_blank", "noopener"); }
      if (el.dataset.confirm && !window.confirm(el.dataset.confirm)) return;
      if (!el.dataset.actionId) return;
      act(Object.assign({action_id: el.dataset.actionId, block_id: el.dataset.blockId,
        value: el.dataset.value || null}, where(el)));
    } else if (el.classList.contains("reaction")) {
      const at = where(el);
      try { await post("/api/react", {user: state.user, channel: at.channel, ts: at.ts, name: el.dataset.reaction}); } catch (e) { /* shown */ }
      refresh();
    } else if (el.classList.contains("thread-link")) {
      state.thread = el.dataset.thread; refresh();
    } else if (el.classList.contains("close-thread")) {
      state.thread = ""; refresh();
    } else if (el.classList.contains("channel-link")) {
      state.channel = el.dataset.channel; state.tab = "channel"; state.thread = "";
      setTitle(); refresh();
    } else if (el.classList.contains("home-link")) {
      openHome();
    } else if (el.dataset.advance) {
      try { await post("/api/clock", {seconds: Number(el.dataset.advance)}); } catch (e) { /* shown */ }
      refresh();
    } else if (el.hasAttribute("data-close")) {
      const modal = el.closest(".modal");
      try { await post("/api/close", {user: state.user, view_id: modal.dataset.viewId}); } catch (e) { /* shown */ }
      refresh();
    } else if (el.hasAttribute("data-submit")) {
      const modal = el.closest(".modal");
      el.disabled = true;
      try {
        await post("/api/submit", {user: state.user, view_id: modal.dataset.viewId, values: formValues(modal)});
      } catch (e) { /* shown */ } finally { el.disabled = false; }
      refresh();
    } else if (el.classList.contains("ext-option")) {
      const box = el.closest(".bk-input");
      const hidden = box.querySelector(".ext-value");
      hidden.value = el.dataset.value;
      hidden.dataset.text = el.textContent;
      box.querySelector(".ext-query").value = el.textContent;
      box.querySelector(".ext-options").hidden = true;
      if (box.dataset.dispatch) {
        act(Object.assign({action_id: box.dataset.actionId, block_id: box.dataset.blockId,
          selected_option: {text: {type: "plain_text", text: el.textContent}, value: el.dataset.value}},
          where(box)));
      }
    }
  });

  // -- the modal's dispatching selects and the live target search -------------------------
  document.addEventListener("change", (ev) => {
    const box = ev.target.closest(".bk-input[data-dispatch]");
    if (box && ev.target.tagName === "SELECT" && ev.target.value) {
      const option = ev.target.selectedOptions[0];
      act(Object.assign({action_id: box.dataset.actionId, block_id: box.dataset.blockId,
        selected_option: {text: {type: "plain_text", text: option.textContent}, value: option.value}},
        where(box)));
    }
  });

  let searchTimer = null;
  async function search(input) {
    const box = input.closest(".bk-input");
    const modal = input.closest(".modal");
    const q = new URLSearchParams({user: state.user, view_id: modal.dataset.viewId,
      action_id: box.dataset.actionId, q: input.value});
    const res = await fetch("/api/suggest?" + q.toString());
    const data = await res.json();
    const list = box.querySelector(".ext-options");
    if (!res.ok) { toast(data.error); return; }
    list.innerHTML = "";
    let count = 0;
    data.groups.forEach((g) => {
      if (g.label) {
        const head = document.createElement("div");
        head.className = "ext-group"; head.textContent = g.label; list.appendChild(head);
      }
      g.options.forEach((o) => {
        const item = document.createElement("div");
        item.className = "ext-option"; item.dataset.value = o.value; item.textContent = o.text;
        list.appendChild(item); count += 1;
      });
    });
    if (!count) {
      const none = document.createElement("div");
      none.className = "ext-none"; none.textContent = "No matches"; list.appendChild(none);
    }
    list.hidden = false;
  }
  document.addEventListener("input", (ev) => {
    if (!ev.target.classList.contains("ext-query")) return;
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => search(ev.target), 250);
  });
  document.addEventListener("focusin", (ev) => {
    if (ev.target.classList.contains("ext-query")) search(ev.target);
  });

  // -- the composer, the user switcher ---------------------------------------------------
  $("#composer").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const input = $("#message");
    const text = input.value.trim();
    if (!text || text === "/automation") return;
    try {
      await post("/api/send", {user: state.user, channel: state.channel, text: text});
      input.value = "/automation ";
    } catch (e) { /* shown */ }
    refresh();
  });
  $("#user").addEventListener("change", (ev) => {
    state.user = ev.target.value;
    state.modalKey = ""; state.last = {};
    if (state.tab === "home") { openHome(); } else { setTitle(); refresh(); }
  });

  setTitle();
  refresh();
})();
