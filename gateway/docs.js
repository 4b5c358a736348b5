// Renders /openapi.json as a readable list of operations. No dependencies.
(async () => {
  const root = document.getElementById("api");
  const doc = await (await fetch("/openapi.json")).json();
  root.textContent = "";
  const el = (tag, text, cls) => {
    const e = document.createElement(tag);
    if (text) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  };
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
