"""One password policy for the admin pages and `flask users create`."""


def test_admin_page_and_cli_share_one_password_policy(sapp, world, as_role):
    from survey_app.services.accounts import MIN_PASSWORD_LENGTH, password_problem

    short = "p" * (MIN_PASSWORD_LENGTH - 1)
    fine = "p" * MIN_PASSWORD_LENGTH
    with sapp.test_request_context("/"):
        message = password_problem(short)
        assert message and password_problem(fine) is None
    assert str(MIN_PASSWORD_LENGTH) in message

    c = as_role("admin")
    r = c.post("/staff/admin/users", data={"username": "ngan", "role": "analyst", "unit_code": "P",
                                           "password": short})
    assert r.status_code == 400 and message in r.get_data(as_text=True)
    assert c.post("/staff/admin/users", data={"username": "ngan", "role": "analyst", "unit_code": "P",
                                              "password": fine}).status_code == 302

    runner = sapp.test_cli_runner()
    res = runner.invoke(args=["users", "create", "--username", "dai", "--password", short, "--role", "admin"])
    assert res.exit_code != 0 and message in res.output
    res = runner.invoke(args=["users", "create", "--username", "dai", "--password", fine, "--role", "admin"])
    assert res.exit_code == 0, res.output
