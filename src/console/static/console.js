// Live updates for the console's pages (they work without this: the server renders everything
// and a <noscript> refresh keeps them current). The server pushes rendered fragments over
// server-sent events; EventSource reconnects by itself.
(function () {
  const live = document.querySelector("header .live");
  const say = (on, text) => { if (live) { live.classList.toggle("on", on); live.textContent = text; } };
  const ages = () => {
    const now = Date.now();
    document.querySelectorAll("time[data-ago]").forEach((t) => {
      const s = Math.round((now - Date.parse(t.getAttribute("datetime"))) / 1000);
      t.textContent = s < 60 ? `${Math.max(s, 0)} s ago` : s < 3600 ? `${Math.floor(s / 60)} min ago`
        : s < 172800 ? `${Math.floor(s / 3600)} h ago` : `${Math.floor(s / 86400)} days ago`;
    });
  };
  setInterval(ages, 15000);
  const stream = document.body.dataset.stream;
  if (!stream || !window.EventSource) return;
  const es = new EventSource(stream);
  es.onopen = () => say(true, "live");
  es.onerror = () => say(false, "reconnecting…");
  es.addEventListener("reload", () => location.reload());
  // Fleet page: a tile replaced in place; the counts recomputed from the tiles.
  es.addEventListener("tile", (e) => {
    const tpl = document.createElement("template");
    tpl.innerHTML = e.data.trim();
    const tile = tpl.content.firstElementChild;
    const old = document.getElementById(tile.id);
    const only = document.body.dataset.only;
    if (old) old.replaceWith(tile);
    else if (!only) document.querySelector(".grid")?.appendChild(tile);
    if (only && !tile.classList.contains(only)) document.getElementById(tile.id)?.remove();
    for (const level of ["red", "amber", "green", "grey"]) {
      const n = document.querySelector(`.counts [data-level=${level}] b`);
      if (n && !only) n.textContent = document.querySelectorAll(`.grid .tile.${level}`).length;
    }
    ages();
  });
  // Cluster and changes pages: this cluster changed; fetch the page again and swap its content.
  es.addEventListener("changed", async () => {
    const r = await fetch(location.href, { headers: { Accept: "text/html" } });
    if (!r.ok) return;
    const doc = new DOMParser().parseFromString(await r.text(), "text/html");
    // A page with a form swaps only its live part ([data-live]), never what the operator types.
    const part = document.querySelector("[data-live]");
    const sel = part ? `#${part.id}` : "main";
    const fresh = doc.querySelector(sel);
    if (fresh) document.querySelector(sel).replaceWith(fresh);
    ages();
  });
})();
