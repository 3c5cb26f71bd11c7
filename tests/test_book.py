"""The website edition's own pages (book/): what they show must stay true. The built site is checked in a browser by
tests/browser/test_website.py (`make browser-test`)."""

import re
import subprocess
import sys

from wf_lessons.config import REPO_ROOT

COURSEWORK = REPO_ROOT / "book" / "coursework.md"


def test_coursework_page_calls_run_and_print_what_they_say():
    """The Python block of "using wf_lessons in your own project" runs as printed (with the course's data) and its
    printed results match the comments beside them."""
    blocks = re.findall(r"```python\n(.*?)```", COURSEWORK.read_text(), re.S)
    assert len(blocks) == 1, f"book/coursework.md should have one Python block, found {len(blocks)}"
    result = subprocess.run([sys.executable, "-c", blocks[0]], capture_output=True, text=True, timeout=600,
                            cwd=REPO_ROOT)
    assert result.returncode == 0, f"the coursework page's code fails:\n{result.stderr[-3000:]}"
    lines = result.stdout.splitlines()
    assert lines[0] == "torch.Size([2, 64, 256])", lines
    assert re.fullmatch(r"\{'loss': [\d.]+, 'accuracy': [\d.]+, 'images': 500\}", lines[1]), lines


def test_coursework_page_names_the_install_commands_of_the_readme():
    """The page takes its install notes and locations table from the README (book/make_book.py puts them in)."""
    sys.path.insert(0, str(REPO_ROOT / "book"))
    try:
        import make_book
    finally:
        sys.path.pop(0)
    page = make_book.coursework_page()
    assert "pip install path/to/wf-lessons" in page and "| data folder: CIFAR-10 |" in page
    assert "<!--" not in page, "the README section's marker was left in the page"
    assert "@article{he2026weightformer" in page


def test_a_chapter_page_shows_its_colab_link_once_under_the_hardware_line():
    """The chapter's title cell carries its Open in Colab link (tests/test_colab.py); the book adds the hardware and
    runtime line, not a second link (the browser test checks the link on the built page)."""
    sys.path.insert(0, str(REPO_ROOT / "book"))
    try:
        import make_book
    finally:
        sys.path.pop(0)
    hardware = make_book.hardware_by_chapter()
    for path in make_book.chapters():
        title = make_book.stage_notebook(path, execute=False, hardware=hardware).cells[0].source
        link = make_book.colab_url(path.relative_to(REPO_ROOT).as_posix())
        assert title.count("Open in Colab") == 1 and f"]({link})" in title, f"{path.name}: {title[:400]}"
        assert "**Hardware:**" in title, f"{path.name}: no hardware line"
