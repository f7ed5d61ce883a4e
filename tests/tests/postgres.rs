//! The conformance suite and the product scenarios against Postgres, each
//! test in its own schema. Needs `DATABASE_URL`; without a server the tests
//! print a skip notice, and with `KEYWARD_REQUIRE_POSTGRES=1` they fail.

mod conformance {
    keyward_core::conformance_tests!(optional keyward_tests::backends::postgres());
}

mod scenarios {
    keyward_tests::scenario_tests!(optional keyward_tests::backends::postgres_dyn());
}
