"""Every staff page and export is `Cache-Control: no-store` (unpublished
figures and comments never stay in a cache), the sign-in page included; the
SVG charts only `private` (the browser may keep them a minute, a shared cache
never)."""
from tests.staff.test_access import GLOBAL_ROUTES, UNIT_ROUTES


def test_every_staff_page_and_export_is_no_store(sapp, world, as_role):
    admin = as_role("admin")
    urls = [tpl.format(u=world["inside"], c=world["counter_in"], y=world["year"])
            for method, tpl, _ in UNIT_ROUTES + GLOBAL_ROUTES if method == "GET"]
    assert len(urls) > 10
    for url in urls:
        r = admin.get(url)
        r.get_data()  # read to the end (a streamed export), as a browser does
        r.close()
        assert r.status_code == 200, (url, r.status_code)
        cache = r.headers.get("Cache-Control", "")
        if url.endswith(".svg"):
            assert cache.startswith("private"), (url, cache)
        else:
            assert "no-store" in cache, (url, cache)
    assert "no-store" in sapp.test_client().get("/staff/login").headers["Cache-Control"]
