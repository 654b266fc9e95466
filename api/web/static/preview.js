// Previews on a document's page: a PDF drawn a page at a time on a <canvas> by the vendored PDF.js,
// scaled to the width of its box (also on a 390 px phone, where the box spans the screen) and, with
// 放大/缩小, drawn again up to three times as wide in a box that scrolls, so small print stays sharp
// and readable; an image shown by the browser itself. (Text files need no script: the page holds
// their text.)
// Whatever fails, the page then offers the download link instead ("无法预览，请下载后查看").
// Loaded as an ES module (<script type=module>): no inline script, the page's CSP allows it.

const PDFJS = new URL("./vendor/pdfjs/", import.meta.url);
// Widths a page is drawn at, as multiples of the box's width; the first fits the box.
const ZOOMS = [1, 1.5, 2, 3];
// Browsers refuse (or blank) larger canvases; phones' limit is about 16.7 million pixels.
const MAX_CANVAS_PIXELS = 16_000_000;

function showFallback(container, reason) {
  if (reason) {
    console.warn("预览失败", reason);
  }
  for (const part of container.querySelectorAll(
    "[data-pdf-canvas], [data-pdf-controls], [data-pdf-loading], [data-preview-image]",
  )) {
    part.hidden = true;
  }
  const fallback = container.querySelector("[data-preview-fallback]");
  if (fallback) {
    fallback.hidden = false;
  }
  container.dataset.state = "failed";
}

async function openPdf(url) {
  const pdfjs = await import(new URL("pdf.min.mjs", PDFJS).href);
  pdfjs.GlobalWorkerOptions.workerSrc = new URL("pdf.worker.min.mjs", PDFJS).href;
  return pdfjs.getDocument({
    url,
    cMapUrl: new URL("cmaps/", PDFJS).href,
    cMapPacked: true,
    standardFontDataUrl: new URL("standard_fonts/", PDFJS).href,
    // No eval (older PDF.js compiled fonts with it; the CSP forbids it anyway).
    isEvalSupported: false,
    // WebAssembly decoders for JPEG 2000 and JBIG2 images (scans), served beside PDF.js.
    wasmUrl: new URL("wasm/", PDFJS).href,
    // One request for the whole file: each preview is one audited event, not one per range.
    disableRange: true,
  }).promise;
}

async function previewPdf(container) {
  const canvas = container.querySelector("[data-pdf-canvas]");
  const frame = container.querySelector("[data-pdf-frame]") || container;
  const controls = container.querySelector("[data-pdf-controls]");
  const pages = container.querySelector("[data-pdf-pages]");
  const previous = container.querySelector("[data-pdf-prev]");
  const next = container.querySelector("[data-pdf-next]");
  const status = container.querySelector("[data-pdf-status]");
  const zoomOut = container.querySelector("[data-pdf-zoom-out]");
  const zoomIn = container.querySelector("[data-pdf-zoom-in]");
  const zoomStatus = container.querySelector("[data-pdf-zoom-status]");
  const loading = container.querySelector("[data-pdf-loading]");
  container.dataset.state = "loading";

  const pdf = await openPdf(container.dataset.src);
  let current = 1;
  let zoom = 0; // index into ZOOMS
  let task = null;
  let drawnWidth = 0;

  async function draw() {
    if (task) {
      task.cancel();
    }
    const page = await pdf.getPage(current);
    // The box's inner width (its scroll bar aside), times the zoom.
    const fit = Math.max(frame.clientWidth, 120);
    const width = fit * ZOOMS[zoom];
    const natural = page.getViewport({ scale: 1 });
    const height = (width / natural.width) * natural.height;
    // Drawn at the screen's pixel density, within what a canvas may hold.
    const ratio = Math.min(
      window.devicePixelRatio || 1,
      Math.sqrt(MAX_CANVAS_PIXELS / Math.max(width * height, 1)),
    );
    const viewport = page.getViewport({ scale: (width / natural.width) * ratio });
    canvas.width = Math.floor(viewport.width);
    canvas.height = Math.floor(viewport.height);
    // Shown as wide as the box (the stylesheet's 100%) or, zoomed, wider: the box then scrolls.
    canvas.style.width = zoom === 0 ? "" : `${ZOOMS[zoom] * 100}%`;
    container.dataset.zoom = String(ZOOMS[zoom]);
    drawnWidth = fit;
    const mine = page.render({ canvas, viewport });
    task = mine;
    try {
      await mine.promise;
    } catch (error) {
      if (error && error.name === "RenderingCancelledException") {
        return;
      }
      throw error;
    } finally {
      if (task === mine) {
        task = null;
      }
    }
    status.textContent = `第 ${current} / ${pdf.numPages} 页`;
    previous.disabled = current <= 1;
    next.disabled = current >= pdf.numPages;
    if (pages) {
      pages.hidden = pdf.numPages <= 1;
    }
    if (zoomIn && zoomOut && zoomStatus) {
      zoomOut.disabled = zoom === 0;
      zoomIn.disabled = zoom === ZOOMS.length - 1;
      zoomStatus.textContent = zoom === 0 ? "适合宽度" : `${ZOOMS[zoom] * 100}%`;
      controls.hidden = false;
    } else {
      controls.hidden = pdf.numPages <= 1;
    }
    loading.hidden = true;
    container.dataset.page = String(current);
    container.dataset.state = "rendered";
  }

  function turn(step) {
    const target = current + step;
    if (target < 1 || target > pdf.numPages) {
      return;
    }
    current = target;
    frame.scrollTo(0, 0);
    draw().catch((error) => showFallback(container, error));
  }

  function scale(step) {
    const target = zoom + step;
    if (target < 0 || target >= ZOOMS.length) {
      return;
    }
    // Keep the middle of what was in view in the middle.
    const middleX = (frame.scrollLeft + frame.clientWidth / 2) / Math.max(frame.scrollWidth, 1);
    const middleY = (frame.scrollTop + frame.clientHeight / 2) / Math.max(frame.scrollHeight, 1);
    zoom = target;
    draw()
      .then(() => {
        frame.scrollLeft = middleX * frame.scrollWidth - frame.clientWidth / 2;
        frame.scrollTop = middleY * frame.scrollHeight - frame.clientHeight / 2;
      })
      .catch((error) => showFallback(container, error));
  }

  previous.addEventListener("click", () => turn(-1));
  next.addEventListener("click", () => turn(1));
  if (zoomIn && zoomOut) {
    zoomIn.addEventListener("click", () => scale(1));
    zoomOut.addEventListener("click", () => scale(-1));
  }

  let resizing = 0;
  new ResizeObserver(() => {
    window.clearTimeout(resizing);
    resizing = window.setTimeout(() => {
      if (Math.abs(frame.clientWidth - drawnWidth) > 8 && container.dataset.state === "rendered") {
        draw().catch((error) => showFallback(container, error));
      }
    }, 200);
  }).observe(frame);

  await draw();
}

function watchImage(image) {
  const container = image.parentElement;
  const failed = () => showFallback(container);
  if (image.complete && image.naturalWidth === 0) {
    failed();
  } else {
    image.addEventListener("error", failed);
  }
}

for (const container of document.querySelectorAll("[data-pdf-preview]")) {
  previewPdf(container).catch((error) => showFallback(container, error));
}
for (const image of document.querySelectorAll("[data-preview-image]")) {
  watchImage(image);
}
