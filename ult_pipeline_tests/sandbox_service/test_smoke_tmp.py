def test_world(world, service):
    print(world)
