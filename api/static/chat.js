// The chat page. Every piece of server text goes into the page through textContent, never
// innerHTML: an answer is plain text even when it looks like markup.
"use strict";
(function () {
  const API = "/api/v1";
  const $ = (id) => document.getElementById(id);
  const state = { key: "", token: null, customer: null, session: null, canSignIn: false };

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function headers(json) {
    const h = { Authorization: "Bearer " + state.key };
    if (json) h["Content-Type"] = "application/json";
    if (state.token) h["X-Customer-Token"] = state.token;
    return h;
  }

  function showError(msg) {
    const e = $("error");
    e.textContent = msg || "";
    e.hidden = !msg;
  }

  async function errorText(resp) {
    try {
      const body = await resp.json();
      return (body.error && body.error.message) || resp.statusText;
    } catch (_) {
      return resp.statusText || ("HTTP " + resp.status);
    }
  }

  function scrollDown() { const log = $("log"); log.scrollTop = log.scrollHeight; }

  function addUser(text) {
    $("log").appendChild(el("li", "user", text));
    scrollDown();
  }

  function addBot() {
    const li = el("li", "bot pending");
    li.setAttribute("data-testid", "bot");
    const text = el("span", "text", "");
    li.appendChild(text);
    $("log").appendChild(li);
    scrollDown();
    return li;
  }

  function showPanel(r) {
    $("p-intent").textContent = r.intent.name + " (" + Number(r.intent.confidence).toFixed(2) + ")";
    $("p-status").textContent = r.status || "-";
    $("p-query").textContent = r.query_name || "-";
    $("p-verbalizer").textContent = r.verbalizer || "-";
    const ul = $("p-entities");
    ul.replaceChildren();
    for (const e of r.entities || []) {
      const linked = e.node_id ? " -> " + e.node_id : "";
      ul.appendChild(el("li", null, e.type + ": " + e.text + linked + (e.source === "context" ? " (from context)" : "")));
    }
    $("p-facts").textContent = JSON.stringify(r.facts || [], null, 2);
  }

  function addFeedback(li, r) {
    const box = el("span", "feedback");
    const send = async (rating, btn) => {
      const resp = await fetch(API + "/chat/feedback", {
        method: "POST", headers: headers(true),
        body: JSON.stringify({ session_id: r.session_id, turn: r.turn, rating: rating }),
      });
      if (!resp.ok) { showError(await errorText(resp)); return; }
      for (const b of box.querySelectorAll("button")) b.setAttribute("aria-pressed", "false");
      btn.setAttribute("aria-pressed", "true");
    };
    // words, not emoji: they render the same without an emoji font
    for (const [label, rating, name] of [["Helpful", 5, "Helpful"], ["Not helpful", 1, "Not helpful"]]) {
      const b = el("button", null, label);
      b.type = "button";
      b.title = name;
      b.setAttribute("aria-label", name);
      b.setAttribute("aria-pressed", "false");
      b.setAttribute("data-testid", rating === 5 ? "thumbs-up" : "thumbs-down");
      b.addEventListener("click", () => send(rating, b));
      box.appendChild(b);
    }
    li.appendChild(box);
  }

  function addSuggestions(li, r) {
    if (!r.suggestions || !r.suggestions.length) return;
    const box = el("span", "suggestions");
    for (const s of r.suggestions.slice(0, 4)) {
      const b = el("button", null, s);
      b.type = "button";
      b.addEventListener("click", () => { $("message").value = s; ask(); });
      box.appendChild(b);
    }
    li.appendChild(box);
  }

  function finish(li, r) {
    li.classList.remove("pending");
    state.session = r.session_id;
    li.querySelector(".text").textContent = r.answer;
    if (r.handoff) li.classList.add("handoff");
    li.setAttribute("data-turn", String(r.turn));
    showPanel(r);
    addFeedback(li, r);
    addSuggestions(li, r);
    scrollDown();
  }

  // Server-sent events over a POST: read the body as a stream and split it into events.
  async function ask() {
    const input = $("message");
    const message = input.value.trim();
    if (!message) return;
    input.value = "";
    showError("");
    addUser(message);
    const li = addBot();
    const span = li.querySelector(".text");
    $("send").disabled = true;
    try {
      const body = { message: message };
      if (state.session) body.session_id = state.session;
      const resp = await fetch(API + "/chat/stream", { method: "POST", headers: headers(true), body: JSON.stringify(body) });
      if (!resp.ok) {
        if (resp.status === 404 && state.session) state.session = null;
        li.remove();
        showError(await errorText(resp));
        return;
      }
      const reader = resp.body.getReader();
      const decoder = new TextDecoder();
      let buf = "";
      let done = false;
      while (!done) {
        const chunk = await reader.read();
        if (chunk.done) break;
        buf += decoder.decode(chunk.value, { stream: true });
        let cut;
        while ((cut = buf.indexOf("\n\n")) >= 0) {
          const raw = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          let event = "message";
          const data = [];
          for (const line of raw.split("\n")) {
            if (line.startsWith("event:")) event = line.slice(6).trim();
            else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
          }
          const payload = JSON.parse(data.join("\n") || "null");
          if (event === "token") {
            li.classList.remove("pending");
            span.textContent += payload.text;
            scrollDown();
          } else if (event === "final") {
            finish(li, payload);
            done = true;
          } else if (event === "error") {
            showError((payload.error && payload.error.message) || "the reply failed");
            done = true;
          }
        }
      }
    } catch (err) {
      showError("the connection failed: " + err.message);
    } finally {
      $("send").disabled = false;
      input.focus();
    }
  }

  const EXAMPLES = [
    "What can you tell me about your best-rated headphones?",
    "Where is my order?",
    "How long does delivery take?",
    "What is your return policy?",
  ];

  // The page's own greeting with example questions (not a reply: it has no turn and no feedback).
  function greet() {
    const li = el("li", "bot greeting");
    li.setAttribute("data-testid", "greeting");
    li.appendChild(el("span", "text", "Hi! I can help with products, your orders, delivery, returns and " +
                                      "your account. For example:"));
    const box = el("span", "suggestions");
    for (const q of EXAMPLES) {
      const b = el("button", null, q);
      b.type = "button";
      b.addEventListener("click", () => { $("message").value = q; ask(); });
      box.appendChild(b);
    }
    li.appendChild(box);
    $("log").appendChild(li);
  }

  function newConversation() {
    state.session = null;
    $("log").replaceChildren();
    greet();
    for (const id of ["p-intent", "p-status", "p-query", "p-verbalizer"]) $(id).textContent = "-";
    $("p-entities").replaceChildren();
    $("p-facts").textContent = "";
    showError("");
  }

  // Sign in or Sign out, never both.
  function showIdentity() {
    $("who").textContent = state.customer ? "Signed in as " + state.customer : "Not signed in";
    $("sign-out").hidden = !state.customer;
    $("sign-in").hidden = !!state.customer || !state.canSignIn;
    $("customer").hidden = !!state.customer || !state.canSignIn;
  }

  async function signIn() {
    const customer = $("customer").value;
    if (!customer) return;
    const resp = await fetch(API + "/dev/customer-token", {
      method: "POST", headers: headers(true), body: JSON.stringify({ customer_id: customer }),
    });
    if (!resp.ok) { showError(await errorText(resp)); return; }
    const body = await resp.json();
    state.token = body.token;
    state.customer = body.customer_id;
    // The conversation goes on: an anonymous session continued with a customer token becomes that
    // customer's (one way only), so the transcript and the session are kept ("and now?" works).
    if (state.session) {
      const note = el("li", "note", "Signed in as " + state.customer + ". Carry on: I can look up your orders now.");
      note.setAttribute("data-testid", "note");
      $("log").appendChild(note);
      scrollDown();
    }
    showIdentity();
  }

  function signOut() {
    state.token = null;
    state.customer = null;
    newConversation();  // the signed-in conversation is the customer's: never continued anonymously
    showIdentity();
  }

  async function init() {
    $("ask").addEventListener("submit", (ev) => { ev.preventDefault(); ask(); });
    $("new-chat").addEventListener("click", newConversation);
    $("sign-in").addEventListener("click", signIn);
    $("sign-out").addEventListener("click", signOut);
    const keyInput = $("api-key");
    keyInput.addEventListener("change", () => { state.key = keyInput.value.trim(); sessionStorage.setItem("kgqa-key", state.key); });
    state.key = sessionStorage.getItem("kgqa-key") || "";
    let config = null;
    if (document.body.dataset.dev === "true") {
      try {
        const resp = await fetch(API + "/dev/config");
        if (resp.ok) config = await resp.json();
      } catch (_) { config = null; }
    }
    if (config && config.api_key) state.key = config.api_key;
    if (!state.key) $("key-label").hidden = false;
    keyInput.value = state.key;
    if (config && config.sign_in && config.customers.length) {
      const sel = $("customer");
      for (const c of config.customers) {
        const o = el("option", null, c);
        o.value = c;
        sel.appendChild(o);
      }
      state.canSignIn = true;
    }
    greet();
    showIdentity();
    document.body.dataset.ready = "true";
  }

  init();
})();
