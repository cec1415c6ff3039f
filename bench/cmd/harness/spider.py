"""The benchmark's Scrapy spider, run by the harness as

    scrapy runspider spider.py -a urls=URLS_FILE -O OUT.jsonl:jsonlines

It requests every URL of the urls file and writes one item per URL with the
fields the other tools extract (title, meta description, h1-h3 headings,
absolute links without fragments, deduplicated, in document order), or the
reason it has no page.

Scrapy's settings stay at their defaults (CONCURRENT_REQUESTS 16,
CONCURRENT_REQUESTS_PER_DOMAIN 8, no delay, no AutoThrottle) but for two that
change nothing in how it fetches: ROBOTSTXT_OBEY is on, as in the settings.py
that `scrapy startproject` writes, and the log says INFO rather than a DEBUG
line per request.
"""
import re

import scrapy

SPACE = re.compile(r"\s+")


def clean(s):
    return SPACE.sub(" ", s or "").strip()


class BenchSpider(scrapy.Spider):
    name = "bench"
    custom_settings = {
        "ROBOTSTXT_OBEY": True,
        "LOG_LEVEL": "INFO",
    }

    def __init__(self, urls=None, **kwargs):
        super().__init__(**kwargs)
        if not urls:
            raise ValueError("give the urls file: -a urls=FILE")
        self.urls_file = urls

    def start_requests(self):
        # Read lazily, as Scrapy's scheduler asks for more.
        with open(self.urls_file, encoding="utf-8") as f:
            for line in f:
                url = line.strip()
                if url and not url.startswith("#"):
                    yield scrapy.Request(url, callback=self.parse, errback=self.failed,
                                         cb_kwargs={"url": url})

    def parse(self, response, url):
        links, seen = [], set()
        for href in response.css("a::attr(href)").getall():
            link = response.urljoin(href.strip()).split("#", 1)[0]
            if link.startswith(("http://", "https://")) and link not in seen:
                seen.add(link)
                links.append(link)
        headings = [clean(" ".join(h.css("::text").getall())) for h in response.css("h1, h2, h3")]
        yield {
            "url": url,
            "status": response.status,
            "content_type": response.headers.get("Content-Type", b"").decode("latin-1"),
            "title": clean(response.css("title::text").get()),
            "description": clean(response.css('meta[name="description"]::attr(content)').get()),
            "headings": [h for h in headings if h],
            "links": links,
            "bytes": len(response.body),
        }

    def failed(self, failure):
        request = failure.request
        yield {
            "url": request.cb_kwargs.get("url", request.url),
            "error": {"kind": type(failure.value).__name__, "message": str(failure.value)},
        }
