//! The names of the configuration's fields, read from its `Deserialize`
//! implementation, so the list of variables the environment may set cannot
//! drift from the struct.

use serde::de::{self, Deserialize, Visitor};

/// The field names `T` deserializes (empty if `T` is not a struct).
pub(crate) fn field_names<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    // The derive calls `deserialize_struct` with its field list first thing;
    // the introspector records it and stops there with an error we discard.
    let _ = T::deserialize(Introspector(&mut fields));
    fields
}

struct Introspector<'a>(&'a mut &'static [&'static str]);

impl<'de> de::Deserializer<'de> for Introspector<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(de::Error::custom("fields recorded"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    #[allow(dead_code)] // only its shape matters
    struct Two {
        first: u32,
        second_one: String,
    }

    #[test]
    fn the_fields_of_a_struct_are_listed_in_order() {
        assert_eq!(field_names::<Two>(), ["first", "second_one"]);
    }

    #[test]
    fn a_non_struct_has_no_fields() {
        assert!(field_names::<u32>().is_empty());
    }
}
