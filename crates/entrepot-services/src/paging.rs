//! Keyset pagination of the admin listings.
//!
//! A listing is read one page at a time along a stored order (an id, an
//! e-mail, a version number, ...): a page starts after the key of the last
//! item of the page before (`WHERE key > ? ORDER BY key LIMIT size + 1`), so it
//! costs one index seek and `size` rows however long the listing is, and an
//! item that exists for the whole walk is seen exactly once even while others
//! are added or removed. The extra row says whether another page follows.

/// Items on a page when the caller does not say.
pub const DEFAULT_PAGE_SIZE: u32 = 100;

/// The most items on one page; a larger request is served this many.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// Which page of a listing to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest<K> {
    /// The key of the last item of the previous page; `None`: the first page.
    pub after: Option<K>,
    /// How many items at most, from 1 to [`MAX_PAGE_SIZE`] (other values are
    /// brought into that range).
    pub size: u32,
}

impl<K> PageRequest<K> {
    /// The first page, of `size` items.
    pub fn first(size: u32) -> Self {
        Self { after: None, size }
    }

    /// The page size, within 1..=[`MAX_PAGE_SIZE`].
    pub fn size(&self) -> u32 {
        self.size.clamp(1, MAX_PAGE_SIZE)
    }

    /// How many rows to read: one more than the page holds, to know whether
    /// another page follows.
    pub(crate) fn limit(&self) -> u32 {
        self.size() + 1
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T, K> {
    /// The items, in the listing's order.
    pub items: Vec<T>,
    /// Where the next page starts (the key of the last item here); `None` on
    /// the last page.
    pub next: Option<K>,
}

impl<T, K> Page<T, K> {
    /// The page `request` asked for, from `rows` read with its
    /// [`PageRequest::limit`]; `key` gives an item's place in the listing.
    pub(crate) fn from_rows<Q>(
        mut rows: Vec<T>,
        request: &PageRequest<Q>,
        key: impl Fn(&T) -> K,
    ) -> Self {
        let size = request.size() as usize;
        let more = rows.len() > size;
        rows.truncate(size);
        let next = if more { rows.last().map(key) } else { None };
        Self { items: rows, next }
    }

    /// The same page with each item converted.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U, K> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next: self.next,
        }
    }

    /// The same page with each item converted; the first failure wins.
    pub fn try_map<U, E>(self, f: impl FnMut(T) -> Result<U, E>) -> Result<Page<U, K>, E> {
        Ok(Page {
            items: self.items.into_iter().map(f).collect::<Result<_, _>>()?,
            next: self.next,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extra_row_decides_whether_a_next_page_exists() {
        let request = PageRequest::<u32>::first(2);
        let full = Page::from_rows(vec![1, 2, 3], &request, |n| *n);
        assert_eq!(full.items, [1, 2]);
        assert_eq!(full.next, Some(2));
        let last = Page::from_rows(vec![1, 2], &request, |n| *n);
        assert_eq!(last.items, [1, 2]);
        assert_eq!(last.next, None);
        let empty = Page::from_rows(Vec::<u32>::new(), &request, |n| *n);
        assert_eq!(empty.next, None);
    }

    #[test]
    fn sizes_are_brought_into_range() {
        assert_eq!(PageRequest::<u32>::first(0).size(), 1);
        assert_eq!(PageRequest::<u32>::first(5000).size(), MAX_PAGE_SIZE);
        assert_eq!(PageRequest::<u32>::first(5000).limit(), MAX_PAGE_SIZE + 1);
    }
}
