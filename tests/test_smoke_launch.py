from tests.lti_platform import INSTRUCTOR


def test_teacher_launch_lands_on_start_page(client, platform):
    response = platform.launch(client)
    assert response.status_code == 303, response.text
    page = client.get("/")
    assert page.status_code == 200
    assert "Nguyễn Văn An" in page.text


def test_trainer_launch(client, platform):
    response = platform.launch(client, roles=[INSTRUCTOR])
    assert response.status_code == 303
    assert "cốt cán" in client.get("/").text or "core trainer" in client.get("/").text
