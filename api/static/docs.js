// A small interactive reader of /api/v1/openapi.json: every operation with its schemas, a form
// for its parameters and body, and a Send button. Server text is shown with textContent only.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; };

  function resolve(spec, schema) {
    if (schema && schema.$ref) return spec.components.schemas[schema.$ref.split("/").pop()] || {};
    return schema || {};
  }

  function example(spec, schema, depth) {
    schema = resolve(spec, schema);
    if (depth > 4) return null;
    if (schema.default !== undefined) return schema.default;
    if (schema.anyOf) return example(spec, schema.anyOf[0], depth + 1);
    if (schema.enum) return schema.enum[0];
    switch (schema.type) {
      case "object": {
        const o = {};
        for (const [k, v] of Object.entries(schema.properties || {})) {
          if ((schema.required || []).includes(k)) o[k] = example(spec, v, depth + 1);
        }
        return o;
      }
      case "array": return [];
      case "integer": return schema.minimum || 1;
      case "number": return 0;
      case "boolean": return false;
      default: return "";
    }
  }

  function operation(spec, path, method, op) {
    const d = el("details");
    const s = el("summary");
    s.appendChild(el("span", "method " + method, method));
    s.appendChild(el("code", null, path));
    s.appendChild(el("span", null, "  " + (op.summary || "")));
    d.appendChild(s);
    const body = el("div", "body");
    if (op.description) body.appendChild(el("p", null, op.description));
    const inputs = {};
    const params = el("div", "params");
    for (const p of op.parameters || []) {
      if (p.name === "X-Customer-Token") continue;
      const label = el("label", null, p.name + " (" + p.in + (p.required ? ", required" : "") + ") ");
      const input = el("input");
      input.placeholder = p.description || "";
      label.appendChild(input);
      params.appendChild(label);
      inputs[p.name] = { param: p, input: input };
    }
    body.appendChild(params);
    let textarea = null;
    let fileInput = null;
    const content = (op.requestBody || {}).content || {};
    if (content["application/json"]) {
      textarea = el("textarea");
      textarea.value = JSON.stringify(example(spec, content["application/json"].schema, 0), null, 2);
      body.appendChild(el("h4", null, "Body (application/json)"));
      body.appendChild(textarea);
      body.appendChild(el("pre", null, JSON.stringify(resolve(spec, content["application/json"].schema), null, 2)));
    } else if (content["multipart/form-data"]) {
      fileInput = el("input");
      fileInput.type = "file";
      fileInput.multiple = true;
      body.appendChild(el("h4", null, "Files (field `files`)"));
      body.appendChild(fileInput);
    }
    const send = el("button", null, "Send");
    send.type = "button";
    const out = el("pre");
    send.addEventListener("click", async () => {
      let url = path;
      const query = new URLSearchParams();
      for (const { param, input } of Object.values(inputs)) {
        if (!input.value) continue;
        if (param.in === "path") url = url.replace("{" + param.name + "}", encodeURIComponent(input.value));
        else if (param.in === "query") query.set(param.name, input.value);
      }
      if ([...query].length) url += "?" + query;
      const headers = {};
      if ($("key").value) headers.Authorization = "Bearer " + $("key").value;
      if ($("token").value) headers["X-Customer-Token"] = $("token").value;
      const init = { method: method.toUpperCase(), headers: headers };
      if (textarea) { headers["Content-Type"] = "application/json"; init.body = textarea.value; }
      if (fileInput) { const f = new FormData(); for (const file of fileInput.files) f.append("files", file, file.name); init.body = f; }
      out.textContent = "...";
      try {
        const resp = await fetch(url, init);
        const text = await resp.text();
        let shown = text;
        try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (_) { /* not JSON */ }
        out.textContent = resp.status + " " + resp.statusText + "\n\n" + shown;
      } catch (err) {
        out.textContent = "request failed: " + err.message;
      }
    });
    body.appendChild(send);
    body.appendChild(out);
    d.appendChild(body);
    return d;
  }

  async function init() {
    $("key").value = sessionStorage.getItem("kgqa-key") || "";
    $("key").addEventListener("change", () => sessionStorage.setItem("kgqa-key", $("key").value));
    const spec = await (await fetch("/api/v1/openapi.json")).json();
    $("title").textContent = spec.info.title + " " + spec.info.version;
    $("description").textContent = spec.info.description || "";
    const byTag = {};
    for (const [path, item] of Object.entries(spec.paths)) {
      for (const [method, op] of Object.entries(item)) {
        const tag = (op.tags || ["other"])[0];
        (byTag[tag] = byTag[tag] || []).push([path, method, op]);
      }
    }
    for (const [tag, ops] of Object.entries(byTag)) {
      $("ops").appendChild(el("h2", null, tag));
      for (const [path, method, op] of ops) $("ops").appendChild(operation(spec, path, method, op));
    }
  }

  init();
})();
