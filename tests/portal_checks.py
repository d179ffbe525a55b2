"""What every portal page's browser test checks at 1280 and 375 px: nothing hidden, no word broken."""


def assert_nothing_clipped(page):
    """No table scrolls sideways and no page does: every column is on the screen."""
    clipped = page.evaluate(
        """() => [...document.querySelectorAll('.table-wrap, main, body')]
              .filter(el => el.scrollWidth > el.clientWidth + 1)
              .map(el => el.className || el.tagName)"""
    )
    assert clipped == [], clipped
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def assert_no_word_broken(page, selector):
    """Cells wrap between words, never inside one (at 375 px the attempts table broke words
    letter by letter): a word whose box spans two lines is a broken word."""
    broken = page.evaluate(
        """(selector) => {
               const broken = [];
               for (const cell of document.querySelectorAll(selector)) {
                   const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
                   for (let node = walker.nextNode(); node; node = walker.nextNode()) {
                       for (const match of node.data.matchAll(/\\S+/g)) {
                           const range = document.createRange();
                           range.setStart(node, match.index);
                           range.setEnd(node, match.index + match[0].length);
                           const tops = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
                           if (tops.size > 1) broken.push(match[0]);
                       }
                   }
               }
               return broken;
           }""",
        selector,
    )
    assert broken == [], broken
