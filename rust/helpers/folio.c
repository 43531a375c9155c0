// SPDX-License-Identifier: GPL-2.0

/* Folio and page flag tests, folio locking and references for Rust. */

#include <linux/mm.h>
#include <linux/page-flags.h>
#include <linux/pagemap.h>

__rust_helper struct folio *rust_helper_page_folio(struct page *page)
{
	return page_folio(page);
}

__rust_helper bool rust_helper_folio_test_large(const struct folio *folio)
{
	return folio_test_large(folio);
}

__rust_helper bool rust_helper_folio_test_anon(const struct folio *folio)
{
	return folio_test_anon(folio);
}

__rust_helper bool rust_helper_PageAnonExclusive(const struct page *page)
{
	return PageAnonExclusive(page);
}

__rust_helper void rust_helper_folio_lock(struct folio *folio)
{
	folio_lock(folio);
}

__rust_helper void rust_helper_folio_put(struct folio *folio)
{
	folio_put(folio);
}
