// The upload page: files chosen or dropped are checked, hashed in the browser, looked up (a file
// the township already submitted is not sent again) and sent one after another with progress.
// The server streams a file straight into storage when its sha256 arrives before the file part.
"use strict";

(() => {
  const form = document.getElementById("upload-form");
  if (!form) {
    return;
  }
  const MAX_BYTES = Number(form.dataset.maxBytes) || Infinity;
  const MAX_MB = form.dataset.maxMb || "";
  // Web Crypto digests a whole buffer at once: only for files that fit comfortably in memory.
  const SUBTLE_LIMIT = 64 * 1024 * 1024;
  const SLICE = 4 * 1024 * 1024;
  const FIELD_LABELS = {
    title: "标题",
    category: "类别",
    period: "所属期间",
    tags: "标签",
    description: "说明",
    visibility: "公开范围",
    departments: "指定部门",
    file: "文件",
    sha256: "文件校验值",
    catalog_item: "目录材料",
  };

  const input = document.getElementById("files");
  const zone = document.getElementById("dropzone");
  const list = document.getElementById("upload-list");
  const empty = document.getElementById("upload-empty");
  const startButton = document.getElementById("upload-start");
  const announcer = document.getElementById("upload-announce");
  const rowTemplate = document.getElementById("upload-row");
  const departmentBox = document.getElementById("department-choices");
  const departmentError = document.getElementById("department-error");

  const items = [];
  let running = false;

  class NetworkFailure extends Error {}

  // ---- Showing a file's row -------------------------------------------------------------

  function formatSize(size) {
    if (size < 1024) {
      return `${size} 字节`;
    }
    let value = size;
    for (const unit of ["KB", "MB", "GB"]) {
      value /= 1024;
      if (value < 1024 || unit === "GB") {
        return `${value.toFixed(1)} ${unit}`;
      }
    }
    return `${size} 字节`;
  }

  function makeRow(file) {
    const row = rowTemplate.content.firstElementChild.cloneNode(true);
    row.querySelector(".upload-name").textContent = file.name;
    row.querySelector(".upload-size").textContent = formatSize(file.size);
    row.querySelector(".upload-progress").setAttribute("aria-label", `${file.name} 的进度`);
    list.appendChild(row);
    return row;
  }

  function setStatus(item, text, kind) {
    const status = item.row.querySelector(".upload-status");
    status.textContent = text;
    item.row.dataset.state = kind || item.state;
  }

  function setProgress(item, phase, fraction) {
    item.row.querySelector(".upload-bar").hidden = false;
    const bar = item.row.querySelector(".upload-progress");
    const value = Math.max(0, Math.min(1, fraction)) * 100;
    bar.value = value;
    bar.dataset.phase = phase;
    item.row.querySelector(".upload-percent").textContent = `${Math.floor(value)}%`;
  }

  function clearActions(item) {
    item.row.querySelector(".upload-actions").replaceChildren();
  }

  function addLink(item, href, text) {
    const link = document.createElement("a");
    link.href = href;
    link.textContent = text;
    link.className = "button small";
    item.row.querySelector(".upload-actions").appendChild(link);
  }

  function addButton(item, text, onClick) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "button small";
    button.textContent = text;
    button.addEventListener("click", onClick);
    item.row.querySelector(".upload-actions").appendChild(button);
    return button;
  }

  function announce(text) {
    announcer.textContent = text;
  }

  function refresh() {
    empty.hidden = items.length > 0;
    startButton.disabled = !items.some((item) => item.state === "waiting");
  }

  // ---- Choosing files -------------------------------------------------------------------

  function addFiles(files) {
    for (const file of files) {
      const item = { file, row: makeRow(file), state: "waiting", sha256: null, fields: null };
      items.push(item);
      if (file.size > MAX_BYTES) {
        item.state = "rejected";
        setProgress(item, "none", 0);
        setStatus(item, tooLarge(), "error");
        addRemove(item);
      } else if (file.size === 0) {
        item.state = "rejected";
        setStatus(item, "文件为空，无法上传", "error");
        addRemove(item);
      } else {
        setStatus(item, "等待上传：填好材料信息后点击“开始上传”", "waiting");
        addRemove(item);
      }
    }
    refresh();
  }

  function addRemove(item) {
    addButton(item, "移除", () => {
      const index = items.indexOf(item);
      if (index >= 0 && ["waiting", "rejected", "failed"].includes(item.state)) {
        items.splice(index, 1);
        item.row.remove();
        refresh();
        input.focus();
      }
    });
  }

  input.addEventListener("change", () => {
    addFiles(Array.from(input.files || []));
    // Choosing the same file again must fire "change" again.
    input.value = "";
  });

  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (event) => {
      event.preventDefault();
      zone.classList.add("dragging");
    });
  }
  for (const name of ["dragleave", "dragend"]) {
    zone.addEventListener(name, () => zone.classList.remove("dragging"));
  }
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    if (event.dataTransfer && event.dataTransfer.files.length) {
      addFiles(Array.from(event.dataTransfer.files));
    }
  });
  // A phone or tablet has nothing to drag from: the zone only says what a tap does. The primary
  // pointer decides (a touch laptop with a mouse keeps the desktop words); a browser that knows
  // no pointer queries (some phones' built-in browsers) is asked whether it has a touch screen.
  const dragWords = zone.querySelector(".dropzone-drag");
  const coarse = window.matchMedia ? window.matchMedia("(pointer: coarse)") : null;
  function showZoneWords() {
    const understood = coarse && coarse.media !== "not all";
    const touchOnly = understood
      ? coarse.matches
      : "ontouchstart" in window || (navigator.maxTouchPoints || 0) > 0;
    if (dragWords) {
      dragWords.hidden = touchOnly;
    }
  }
  showZoneWords();
  if (coarse && coarse.addEventListener) {
    coarse.addEventListener("change", showZoneWords); // a keyboard cover attached or taken off
  }

  // A file dropped beside the zone would otherwise replace the page (and lose the queue).
  for (const name of ["dragover", "drop"]) {
    window.addEventListener(name, (event) => {
      if (!zone.contains(event.target)) {
        event.preventDefault();
      }
    });
  }

  // ---- The form's fields ----------------------------------------------------------------

  function chosenVisibility() {
    const checked = form.querySelector('input[name="visibility"]:checked');
    return checked ? checked.value : "departments";
  }

  function showDepartments() {
    departmentBox.hidden = chosenVisibility() !== "restricted";
    if (departmentBox.hidden) {
      departmentError.hidden = true;
    }
    warnIfRequestersLeftOut();
  }

  // Uploading for a request: the warning shows only while the chosen readers leave out a
  // department that asked (仅本乡镇, or 指定部门 without it ticked).
  const visibilityWarning = document.getElementById("visibility-warning");
  const asking = (form.dataset.asking || "").split(",").filter(Boolean);
  function warnIfRequestersLeftOut() {
    if (!visibilityWarning) {
      return;
    }
    const visibility = chosenVisibility();
    let leftOut = visibility === "private";
    if (visibility === "restricted") {
      const ticked = Array.from(form.querySelectorAll('input[name="department"]:checked'), (box) => box.value);
      leftOut = asking.some((id) => !ticked.includes(id));
    }
    visibilityWarning.hidden = !leftOut;
  }

  form.addEventListener("change", (event) => {
    if (event.target instanceof HTMLInputElement && event.target.name === "visibility") {
      showDepartments();
    }
    if (event.target instanceof HTMLInputElement && event.target.name === "department") {
      departmentError.hidden = true;
      warnIfRequestersLeftOut();
    }
  });
  showDepartments();

  // A catalog item fills its slot: its period, category and sharing class are offered as the
  // fields' values (the clerk may still change them). Choosing another item replaces what the
  // previous one put there; choosing none takes back what is still as the item left it: the
  // period and category are emptied, the readers are those the page opened with.
  const catalogSelect = document.getElementById("catalog_item");
  const catalogHint = document.getElementById("catalog-hint");
  const SHARING_VISIBILITY = { unconditional: "departments", conditional: "restricted", none: "private" };
  const offered = { period: "", category: "" };
  // The readers as the chosen item set them ("" for none), to take back only those.
  let offeredReaders = "";
  function readersNow() {
    const ticked = Array.from(form.querySelectorAll('input[name="department"]:checked'), (box) => box.value);
    return `${chosenVisibility()}:${ticked.join(",")}`;
  }
  function setReaders(visibility, departments) {
    for (const radio of form.querySelectorAll('input[name="visibility"]')) {
      radio.checked = radio.value === visibility;
    }
    for (const box of form.querySelectorAll('input[name="department"]')) {
      box.checked = departments.includes(box.value);
    }
    showDepartments();
  }
  function restoreDefaultReaders() {
    if (offeredReaders && readersNow() === offeredReaders) {
      for (const radio of form.querySelectorAll('input[name="visibility"]')) {
        radio.checked = radio.defaultChecked;
      }
      for (const box of form.querySelectorAll('input[name="department"]')) {
        box.checked = box.defaultChecked;
      }
      showDepartments();
    }
    offeredReaders = "";
  }
  function offer(name, value, replace) {
    const field = form.elements.namedItem(name);
    if (!field) {
      return;
    }
    const current = field.value.trim();
    if (current && current === value) {
      offered[name] = value; // already as the item has it (the request's own values)
      return;
    }
    if (!current || (replace && value) || current === offered[name]) {
      field.value = value;
      if (field.value !== value) {
        field.value = ""; // a county list without the item's category: the clerk chooses
      }
      offered[name] = field.value;
    }
  }
  const defaultHint = catalogHint ? catalogHint.textContent : "";
  function chooseCatalogItem(event) {
    const option = catalogSelect.selectedOptions[0];
    // Picked by the clerk (not the page opening with the request's item already chosen).
    const replace = Boolean(event);
    if (!option || !option.value) {
      catalogHint.textContent = defaultHint;
      offer("period", "", false);
      offer("category", "", false);
      restoreDefaultReaders();
      return;
    }
    catalogHint.textContent = option.dataset.hint || "";
    offer("period", option.dataset.period || "", replace);
    offer("category", option.dataset.category || "", replace);
    // Uploading for a request, the server chose readers that include every requesting
    // department: the catalog item's sharing class must not narrow them.
    if (form.dataset.request) {
      return;
    }
    const visibility = SHARING_VISIBILITY[option.dataset.sharing];
    const departments = (option.dataset.departments || "").split(",").filter(Boolean);
    if (visibility && !(visibility === "restricted" && !departments.length)) {
      setReaders(visibility, departments);
      offeredReaders = readersNow();
    } else {
      // An item that says nothing about its readers leaves none of the previous item's.
      restoreDefaultReaders();
    }
  }
  if (catalogSelect && catalogHint) {
    catalogSelect.addEventListener("change", chooseCatalogItem);
    chooseCatalogItem();
  }

  // The fields in the order the server wants them: sha256 first (added when sending), file last.
  function snapshotFields(batchSize) {
    const value = (name) => {
      const element = form.elements.namedItem(name);
      return element && "value" in element ? element.value.trim() : "";
    };
    const visibility = chosenVisibility();
    const fields = [
      ["title", batchSize === 1 ? value("title") : ""],
      ["category", value("category")],
      ["period", value("period")],
      ["tags", value("tags")],
      ["description", value("description")],
      ["visibility", visibility],
    ];
    if (value("catalog_item")) {
      fields.push(["catalog_item", value("catalog_item")]);
    }
    if (visibility === "restricted") {
      const ids = Array.from(form.querySelectorAll('input[name="department"]:checked'), (box) => box.value);
      fields.push(["departments", ids.join(",")]);
    }
    return fields;
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const waiting = items.filter((item) => item.state === "waiting");
    if (!waiting.length) {
      return;
    }
    if (
      chosenVisibility() === "restricted" &&
      !form.querySelector('input[name="department"]:checked')
    ) {
      departmentError.hidden = false;
      const first = form.querySelector('input[name="department"]');
      (first || departmentBox).focus();
      return;
    }
    const fields = snapshotFields(waiting.length);
    for (const item of waiting) {
      item.fields = fields;
      item.state = "queued";
      clearActions(item);
      setStatus(item, "排队等待上传…", "queued");
    }
    refresh();
    pump();
  });

  // ---- Hashing --------------------------------------------------------------------------

  function readSlice(blob) {
    if (blob.arrayBuffer) {
      return blob.arrayBuffer();
    }
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.onerror = () => reject(reader.error);
      reader.readAsArrayBuffer(blob);
    });
  }

  function toHex(buffer) {
    return Array.from(new Uint8Array(buffer), (byte) => byte.toString(16).padStart(2, "0")).join("");
  }

  async function digestWithSubtle(file, onProgress) {
    const whole = new Uint8Array(file.size);
    for (let offset = 0; offset < file.size; offset += SLICE) {
      const part = new Uint8Array(await readSlice(file.slice(offset, offset + SLICE)));
      whole.set(part, offset);
      onProgress((offset + part.length) / file.size);
    }
    return toHex(await window.crypto.subtle.digest("SHA-256", whole));
  }

  // Plain-HTTP intranet addresses have no Web Crypto: the vendored js-sha256, slice by slice.
  async function digestInSlices(file, onProgress) {
    const hasher = window.sha256.create();
    for (let offset = 0; offset < file.size; offset += SLICE) {
      const part = await readSlice(file.slice(offset, offset + SLICE));
      hasher.update(part);
      onProgress(Math.min(1, (offset + part.byteLength) / file.size));
    }
    return hasher.hex();
  }

  async function hashFile(file, onProgress) {
    const subtle = window.crypto && window.crypto.subtle;
    if (subtle && file.size <= SUBTLE_LIMIT) {
      try {
        return await digestWithSubtle(file, onProgress);
      } catch (error) {
        if (!window.sha256) {
          throw error;
        }
      }
    }
    if (window.sha256) {
      return digestInSlices(file, onProgress);
    }
    return null; // the server hashes it anyway; only the duplicate check is skipped
  }

  // ---- Talking to the server ------------------------------------------------------------

  function parseJson(text) {
    try {
      return JSON.parse(text);
    } catch (error) {
      return null;
    }
  }

  // The page's own look-up answers a new file (the usual case) with {"document": null}, not
  // with the API's 404, which the browser's console would show as a failed request.
  async function lookup(sha256) {
    let response;
    try {
      response = await fetch(`/upload/lookup?sha256=${encodeURIComponent(sha256)}`, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
    } catch (error) {
      throw new NetworkFailure();
    }
    const body = parseJson(await response.text());
    if (response.ok && body && "document" in body) {
      return { found: body.document };
    }
    return { error: { status: response.status, body } };
  }

  function send(item, onProgress) {
    return new Promise((resolve, reject) => {
      const data = new FormData();
      if (item.sha256) {
        data.append("sha256", item.sha256);
      }
      for (const [name, value] of item.fields) {
        data.append(name, value);
      }
      data.append("file", item.file, item.file.name);
      const request = new XMLHttpRequest();
      request.open("POST", "/api/v1/documents");
      request.setRequestHeader("Accept", "application/json");
      request.setRequestHeader("X-CSRF-Token", window.materialsCsrfToken ? window.materialsCsrfToken() : "");
      request.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable && event.total > 0) {
          onProgress(event.loaded / event.total);
        }
      });
      request.addEventListener("load", () =>
        resolve({ status: request.status, body: parseJson(request.responseText) }),
      );
      request.addEventListener("error", () => reject(new NetworkFailure()));
      request.addEventListener("abort", () => reject(new NetworkFailure()));
      request.addEventListener("timeout", () => reject(new NetworkFailure()));
      request.send(data);
    });
  }

  function tooLarge() {
    return `文件过大，上限 ${MAX_MB} MB`;
  }

  // The limit bounds the whole request: the file and, around it, the fields and part headers.
  // An upper estimate, so that a file the server would cut off is never sent.
  function requestSize(item) {
    const encoder = new TextEncoder();
    let size = item.file.size + 3 * encoder.encode(item.file.name).length + 512;
    for (const [name, value] of item.fields) {
      size += name.length + encoder.encode(value).length + 256;
    }
    return size + 64 + 256; // sha256
  }

  function errorText(status, body) {
    const error = (body && body.error) || {};
    const message = typeof error.message === "string" ? error.message : "";
    if (status === 413) {
      return tooLarge();
    }
    if (status === 415) {
      if (error.code === "type_mismatch") {
        return message;
      }
      // The server names the detected type (e.g. application/x-msdownload); say what is taken.
      return "文件类型不支持：请上传 PDF、Word、Excel、PowerPoint、WPS、OFD、图片、文本或 ZIP 文件";
    }
    if (status === 422) {
      const field = error.details && error.details.field;
      const label = FIELD_LABELS[field];
      return label ? `${label}：${message || "填写有误"}` : message || "填写的内容有误";
    }
    if (status === 401) {
      return "登录已过期，请刷新页面并重新登录后再上传";
    }
    return message || `上传失败（错误代码 ${status}），请稍后重试`;
  }

  // ---- One file after another -----------------------------------------------------------

  function finish(item, state, text, kind) {
    item.state = state;
    // A bar at 100 % would say the file went up; only a stored upload keeps it.
    item.row.querySelector(".upload-bar").hidden = state !== "done";
    setStatus(item, text, kind);
    announce(`${item.file.name}：${text}`);
  }

  function showDuplicate(item, document) {
    setProgress(item, "done", 1);
    finish(item, "duplicate", "已提交过，无需重复上传", "duplicate");
    addLink(item, `/documents/${encodeURIComponent(document.id)}`, "查看已提交的材料");
    addLink(item, `/documents/${encodeURIComponent(document.id)}/receipt`, "报送回执");
    addAnswerLink(item, document.id);
  }

  // Beijing time, as the pages show it: 2026-10-08 09:30.
  function beijingTime(iso) {
    const parts = {};
    const format = new Intl.DateTimeFormat("en-CA", {
      timeZone: "Asia/Shanghai",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
    });
    for (const part of format.formatToParts(new Date(iso))) {
      parts[part.type] = part.value;
    }
    return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}`;
  }

  // Stored, but the township already holds a material with this title and period (other
  // bytes): a list would show the two as identical lines, so say which one, to withdraw one.
  function showSameTitle(item, others) {
    const actions = item.row.querySelector(".upload-actions");
    for (const other of others) {
      const note = document.createElement("p");
      note.className = "note-warn same-title";
      const link = document.createElement("a");
      link.href = `/documents/${encodeURIComponent(other.id)}`;
      link.textContent = `《${other.title}》`;
      note.append("本乡镇已有同名同期材料", link, `（上传于 ${beijingTime(other.created_at)}）`);
      note.append("。如果是同一份材料上传了两次，请打开其中一份撤回。");
      actions.before(note);
    }
    if (others.length) {
      announce(`${item.file.name}：上传成功。本乡镇已有同名同期材料《${others[0].title}》`);
    }
  }

  // Uploading for a request: back to its page with the new document ticked, or, when filing
  // the catalog slot answered the request already, to the request to see it answered.
  function addAnswerLink(item, documentId, answered) {
    if (form.dataset.request) {
      const back = `/requests/${encodeURIComponent(form.dataset.request)}`;
      if ((answered || []).map(String).includes(form.dataset.request)) {
        setStatus(item, "上传成功，已用此材料答复需求", "done");
        addLink(item, back, "查看需求");
        return;
      }
      addLink(item, `${back}?pick=${encodeURIComponent(documentId)}#answer`, "用此材料答复");
    }
  }

  function showFailure(item, text, retry) {
    finish(item, "failed", text, "error");
    clearActions(item);
    if (retry) {
      addButton(item, "重试", () => {
        clearActions(item);
        item.state = "queued";
        setStatus(item, "排队等待上传…", "queued");
        pump();
      });
    }
    addRemove(item);
  }

  async function process(item) {
    item.state = "active";
    if (requestSize(item) > MAX_BYTES) {
      setProgress(item, "none", 0);
      showFailure(item, tooLarge(), false);
      return;
    }
    if (!item.sha256) {
      setStatus(item, "正在校验文件…", "active");
      setProgress(item, "hash", 0);
      item.sha256 = await hashFile(item.file, (fraction) => setProgress(item, "hash", fraction));
    }
    if (item.sha256) {
      setStatus(item, "正在检查是否已提交过…", "active");
      const looked = await lookup(item.sha256);
      if (looked.found) {
        showDuplicate(item, looked.found);
        return;
      }
      if (looked.error) {
        const { status, body } = looked.error;
        showFailure(item, errorText(status, body), status === 429 || status >= 500);
        return;
      }
    }
    setStatus(item, "正在上传…", "active");
    setProgress(item, "upload", 0);
    const { status, body } = await send(item, (fraction) => setProgress(item, "upload", fraction));
    if (status === 201 && body) {
      setProgress(item, "done", 1);
      finish(item, "done", "上传成功", "done");
      addLink(item, `/documents/${encodeURIComponent(body.id)}`, "查看材料");
      addLink(item, `/documents/${encodeURIComponent(body.id)}/receipt`, "报送回执");
      addAnswerLink(item, body.id, body.answered_requests);
      showSameTitle(item, body.same_title_and_period || []);
    } else if (status === 200 && body && body.duplicate) {
      showDuplicate(item, body);
    } else if (formFieldError(status, body)) {
      // What was typed above was refused, not the file: it waits again, to go up once the
      // field is corrected and "开始上传" pressed.
      const text = errorText(status, body).replace(/[。；]$/, "");
      finish(item, "waiting", `${text}。请改正后再点击“开始上传”`, "error");
      clearActions(item);
      addRemove(item);
      refresh();
    } else {
      showFailure(item, errorText(status, body), status === 429 || status >= 500);
    }
  }

  // A 422 naming one of the form's own fields (not the file or its digest).
  function formFieldError(status, body) {
    const field = status === 422 && body && body.error && body.error.details && body.error.details.field;
    return Boolean(field) && field !== "file" && field !== "sha256" && field in FIELD_LABELS;
  }

  async function pump() {
    if (running) {
      return;
    }
    running = true;
    try {
      let next;
      while ((next = items.find((item) => item.state === "queued"))) {
        try {
          await process(next);
        } catch (error) {
          if (error instanceof NetworkFailure) {
            showFailure(next, "网络中断，请重试", true);
          } else {
            showFailure(next, "无法读取此文件，请重新选择后再试", false);
          }
        }
      }
    } finally {
      running = false;
      refresh();
    }
  }

  // Leaving the page would cut the upload that is running and drop the files still queued.
  window.addEventListener("beforeunload", (event) => {
    if (running || items.some((item) => item.state === "queued")) {
      event.preventDefault();
      event.returnValue = "";
    }
  });

  // On a slow line the clerk may have chosen files before this script arrived.
  if (input.files && input.files.length) {
    addFiles(Array.from(input.files));
    input.value = "";
  }
  refresh();
})();
