// Previews on a document's page: a PDF drawn a page at a time on a <canvas> by the vendored PDF.js,
// scaled to the width of its box (also on a 390 px phone); an image shown by the browser itself.
// Whatever fails, the page then offers the download link instead ("无法预览，请下载后查看").
// Loaded as an ES module (<script type=module>): no inline script, the page's CSP allows it.

const PDFJS = new URL("./vendor/pdfjs/", import.meta.url);

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
  const controls = container.querySelector("[data-pdf-controls]");
  const previous = container.querySelector("[data-pdf-prev]");
  const next = container.querySelector("[data-pdf-next]");
  const status = container.querySelector("[data-pdf-status]");
  const loading = container.querySelector("[data-pdf-loading]");
  container.dataset.state = "loading";

  const pdf = await openPdf(container.dataset.src);
  let current = 1;
  let task = null;
  let drawnWidth = 0;

  async function draw() {
    if (task) {
      task.cancel();
    }
    const page = await pdf.getPage(current);
    const width = Math.max(container.clientWidth, 120);
    const ratio = window.devicePixelRatio || 1;
    const natural = page.getViewport({ scale: 1 });
    // Drawn at the screen's pixel density, shown at the box's width by the stylesheet.
    const viewport = page.getViewport({ scale: (width / natural.width) * ratio });
    canvas.width = Math.floor(viewport.width);
    canvas.height = Math.floor(viewport.height);
    drawnWidth = width;
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
    controls.hidden = pdf.numPages <= 1;
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
    draw().catch((error) => showFallback(container, error));
  }

  previous.addEventListener("click", () => turn(-1));
  next.addEventListener("click", () => turn(1));

  let resizing = 0;
  new ResizeObserver(() => {
    window.clearTimeout(resizing);
    resizing = window.setTimeout(() => {
      if (Math.abs(container.clientWidth - drawnWidth) > 8 && container.dataset.state === "rendered") {
        draw().catch((error) => showFallback(container, error));
      }
    }, 200);
  }).observe(container);

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
