// Package render loads pages in headless Chromium, for --render: it runs
// the page's scripts, then reads the DOM and makes the same record a fetch
// over HTTP would (scrape.Fetcher.ExtractPage), with Rendered set.
//
//   - find.go: which browser a node has (PATH, or --browser).
//   - browser.go: one browser process per Renderer, in a process group of
//     its own that Close kills whole.
//   - retire.go: which browser a page goes to; one that died is replaced,
//     and so is one over its memory limit (proc_linux.go reads its process
//     group's PSS) or its page bound, retired: it finishes its pages while
//     new ones go to its successor, then its group is killed.
//   - render.go: one page in a tab of its own browser context (no cookie
//     or storage of one page reaches the next), bounded by the run's
//     --timeout: navigation, then the network idle or --wait-for.
//   - intercept.go: every request the page makes, paused before it is
//     sent and made by the worker's HTTP client instead (scrape.PageSession:
//     the guard, headers, cookies, proxy, limits), or refused: images,
//     fonts and media unless --render-resources. The browser itself is
//     given a proxy that reaches nothing.
//
// The worker (package worker) owns a Renderer and feeds it the run's render
// tasks; the coordinator never imports this package.
package render
