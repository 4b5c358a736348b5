// Renders /openapi.json as a readable list of operations, and /asyncapi.json
// as the WebSocket frames with their fields. No dependencies.

const el = (tag, text, cls) => {
  const e = document.createElement(tag);
  if (text) e.textContent = text;
  if (cls) e.className = cls;
  return e;
};
(async () => {
  const root = document.getElementById("api");
  const doc = await (await fetch("/openapi.json")).json();
  root.textContent = "";
  const intro = el("p", doc.info.description);
  root.append(intro);
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const section = el("section", null, "op");
      const head = el("h2");
      head.append(el("span", method.toUpperCase(), "method " + method), el("code", path));
      section.append(head, el("p", op.summary));
      if (op.description) section.append(el("p", op.description, "desc"));
      if (op.security) section.append(el("p", "Requires Authorization: Bearer <access_token>", "auth"));
      const list = el("ul");
      for (const [status, resp] of Object.entries(op.responses)) {
        const r = resp.$ref ? doc.components.responses[resp.$ref.split("/").pop()] : resp;
        list.append(el("li", `${status}: ${r.description}`));
      }
      section.append(list);
      root.append(section);
    }
  }
})().catch((e) => {
  document.getElementById("api").textContent = "Could not load /openapi.json: " + e;
});

// The frames of /ws: one section per frame, client to server first.
(async () => {
  const root = document.getElementById("frames");
  const doc = await (await fetch("/asyncapi.json")).json();
  root.textContent = "";
  const resolve = (ref) => ref.slice(2).split("/").reduce((at, key) => at[key], doc);
  root.append(el("p", doc.info.description));
  for (const [operation, heading] of [["receiveClientFrames", "Client to server"], ["sendServerFrames", "Server to client"]]) {
    root.append(el("h2", heading));
    for (const ref of doc.operations[operation].messages) {
      let message = resolve(ref.$ref);
      if (message.$ref) message = resolve(message.$ref);
      const section = el("section", null, "op");
      const head = el("h2");
      head.append(el("code", message.name));
      section.append(head, el("p", message.summary));
      const required = new Set(message.payload.required || []);
      const list = el("ul");
      for (const [field, schema] of Object.entries(message.payload.properties)) {
        if (field === "type") continue;
        const kind = schema.$ref ? schema.$ref.split("/").pop() : [].concat(schema.type || "value").join(" or ");
        const values = schema.enum ? `: ${schema.enum.join(", ")}` : "";
        list.append(el("li", `${field}${required.has(field) ? "" : " (optional)"}: ${kind}${values}`));
      }
      section.append(list);
      const example = message.examples && message.examples[0];
      if (example) section.append(el("pre", JSON.stringify(example.payload)));
      root.append(section);
    }
  }
})().catch((e) => {
  document.getElementById("frames").textContent = "Could not load /asyncapi.json: " + e;
});
